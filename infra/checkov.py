"""checkov's findings on the synthesized templates that are deliberate, each with its reason.

checkov reads acknowledgments from a resource's `Metadata.checkov.skip`; `acknowledge_checkov`
writes them there. The AwsSolutions (cdk-nag) acknowledgments stay where they are; these cover
what checkov checks and cdk-nag doesn't (see README, "Security model": checkov isn't part of
`make test`, `make checkov` runs it).
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
import jsii
from constructs import Construct, IConstruct

from infra.monitoring import TOPIC_ENCRYPTION_DECISION

NO_VPC = (
    "The function calls only AWS APIs (ECR, ECS, S3, ...) over their public endpoints, with IAM "
    "authorization; a VPC would add NAT or endpoint costs and no protection."
)
ENVIRONMENT_KEY = (
    "The environment holds the validated settings and resource names, no secret; Lambda encrypts "
    "it at rest with its AWS-managed key."
)
LOGS_KEY = (
    "The logs hold repository names, image digests and tags, no secret; CloudWatch Logs encrypts "
    "them at rest. A customer-managed key would add a monthly charge and a key policy for "
    "protection they don't need."
)
QUEUE_KEY = (
    "The queue is encrypted with SQS-managed keys (SSE-SQS, SqsManagedSseEnabled); checkov only "
    "recognizes a KMS key."
)
BUCKET_LOGS = (
    "The run bucket holds the sweeper's own scratch documents, written only by its List and Sweep "
    "roles (bucket policy) and checked by digest; its audit trail is the function's log group."
)

BY_TYPE: Mapping[str, Mapping[str, str]] = {
    "AWS::Lambda::Function": {"CKV_AWS_117": NO_VPC, "CKV_AWS_173": ENVIRONMENT_KEY},
    "AWS::Logs::LogGroup": {"CKV_AWS_158": LOGS_KEY},
    "AWS::SQS::Queue": {"CKV_AWS_27": QUEUE_KEY},
    "AWS::SNS::Topic": {"CKV_AWS_26": TOPIC_ENCRYPTION_DECISION},
    "AWS::S3::Bucket": {"CKV_AWS_18": BUCKET_LOGS},
}
"""The same decision for every resource of a type."""


def acknowledge_checkov(resource: cdk.CfnResource, reasons: Mapping[str, str]) -> None:
    """Add checkov skips (check id -> reason) to the resource's template metadata."""
    existing = resource.get_metadata("checkov") or {"skip": []}
    skip = [*existing["skip"], *({"id": i, "comment": r} for i, r in reasons.items())]
    resource.add_metadata("checkov", {"skip": skip})


@jsii.implements(cdk.IAspect)
class CheckovAcknowledgments:
    """Acknowledges `BY_TYPE` on every resource of the stack."""

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, cdk.CfnResource) and node.cfn_resource_type in BY_TYPE:
            acknowledge_checkov(node, BY_TYPE[node.cfn_resource_type])


def add_checkov_acknowledgments(scope: Construct) -> None:
    cdk.Aspects.of(scope).add(CheckovAcknowledgments())
