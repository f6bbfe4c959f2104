"""Plain helpers for the infra tests: synthesize the real app and walk its template."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from ecr_sweeper.core.settings import StackSettings as Settings
from infra import EcrSweeperStack, build_app
from infra.config import cdk_json_context

CUSTOM_SETTINGS: dict[str, Any] = {
    "keepTaggedImages": "7",  # strings, as `cdk synth -c key=value` passes them
    "untaggedGraceDays": 3,
    "protectedTags": "latest,release-*",
    "scheduleExpression": "cron(30 1 * * ? *)",
    "scheduleTimezone": "Europe/Berlin",
    "logRetentionDays": 30,
    "logLevel": "debug",
    "functionTimeoutSeconds": 600,
    "functionMemoryMb": 512,
    "metricsNamespace": "Platform/EcrSweeper",
    "alarmEmail": "platform-oncall@example.com",
    "storagePricePerGbMonth": "0.12",
    "protectEcsImages": "false",
    "protectLambdaImages": False,
    "protectScheduledTaskImages": "false",
    "protectBatchImages": False,
    "protectPreviousTaskDefinitions": "3",
    "protectSageMakerImages": "false",
    "protectCodeBuildImages": False,
    "eksClusters": "[]",
    "extraImageReferences": "ssm:/platform/ecr-sweeper/extra-images",
}
"""Non-default values for every setting the stack uses, so pass-through can't be a coincidence."""


@dataclass(frozen=True)
class Synthesized:
    """One synthesized app: its stack, its template and where the cloud assembly went."""

    stack: EcrSweeperStack
    template: dict[str, Any]
    outdir: Path

    @property
    def settings(self) -> Settings:
        return self.stack.settings

    @property
    def template_file(self) -> Path:
        return self.outdir / f"{self.stack.artifact_id}.template.json"

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == kind
        }

    def only(self, kind: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(kind)
        assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
        return next(iter(found.items()))

    def logical_id(self, construct: cdk.Resource | cdk.CfnResource) -> str:
        node = construct if isinstance(construct, cdk.CfnResource) else construct.node.default_child
        assert isinstance(node, cdk.CfnResource)
        return self.stack.resolve(node.logical_id)  # type: ignore[no-any-return]


def synthesize(overrides: Mapping[str, Any], outdir: Path) -> Synthesized:
    """Build and synthesize the app as `cdk synth` would, with cdk.json context plus overrides.

    Synthesis runs the cdk-nag AwsSolutions plugin, so this raises on any unacknowledged finding.
    """
    context = {**cdk_json_context(), **overrides}
    app, stack = build_app(context, outdir=str(outdir))
    assembly = app.synth()
    template = assembly.get_stack_by_name(stack.stack_name).template
    return Synthesized(stack=stack, template=template, outdir=outdir)


def policy_documents(template: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM-style policy document in the template, wherever it lives."""
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        kind = resource["Type"]
        if kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            yield logical_id, properties["PolicyDocument"]
        elif kind == "AWS::IAM::Role":
            yield f"{logical_id}/trust", properties["AssumeRolePolicyDocument"]
            for inline in properties.get("Policies", []):
                yield f"{logical_id}/{inline['PolicyName']}", inline["PolicyDocument"]
        elif kind == "AWS::SNS::TopicPolicy":
            yield logical_id, properties["PolicyDocument"]
        elif kind == "AWS::KMS::Key":
            yield logical_id, properties["KeyPolicy"]


def statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions_of(statement: Mapping[str, Any]) -> list[str]:
    return [*as_list(statement.get("Action", [])), *as_list(statement.get("NotAction", []))]


def dashboard_body(synthesized: Synthesized) -> dict[str, Any]:
    """The dashboard JSON with CloudFormation tokens replaced by '<Ref:...>' placeholders."""
    _, dashboard = synthesized.only("AWS::CloudWatch::Dashboard")

    def render(value: Any) -> str:
        if isinstance(value, str):
            return value
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(render(part) for part in parts)
        if "Ref" in value:
            return f"<Ref:{value['Ref']}>"
        return f"<{json.dumps(value, sort_keys=True)}>".replace('"', "'")

    return json.loads(render(dashboard["Properties"]["DashboardBody"]))  # type: ignore[no-any-return]


NATIVE_POLICY: dict[str, Any] = {
    "rules": [
        {
            "rulePriority": 1,
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 14,
            },
            "action": {"type": "expire"},
        }
    ]
}
"""A native lifecycle policy (settings: nativeLifecyclePolicy): untagged images expire after 14
days."""
