"""ecr-sweeper: deletes untagged and outdated ECR images safely.

The package is the Lambda asset's code and is reused by the local CLI.
"""
