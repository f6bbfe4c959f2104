"""Test helpers, in one place: the emulator's manifests, the synthesized app, the sweep against the
local ECR, and the Lambda context object. Tests import them as `helpers.<module>` (pytest puts
tests/ on the path); the bench imports `tests.helpers.lambda_context`."""
