"""cdk-nag AwsSolutions and cfn-lint pass; every acknowledged finding is real and explained."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import cfnlint.api
import pytest
from aws_cdk import aws_sns as sns
from helpers.infra import Synthesized, synthesize

from infra import build_app
from infra.config import cdk_json_context

ACKNOWLEDGED = cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
ONLY_IGNORED_LINT_RULE = "W3005"  # CDK's own DependsOn next to an implied Ref dependency


def _acknowledgments(app: Synthesized) -> dict[str, str]:
    """Every acknowledged rule id (without CDK's 'Annotation::' prefix) and its reason."""
    found: dict[str, str] = {}
    for construct in app.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == ACKNOWLEDGED:
                for rule_id, reason in entry.data.items():
                    found[f"{construct.node.path} {rule_id.removeprefix('Annotation::')}"] = reason
    return found


def _nag_findings(outdir: Path) -> set[str]:
    report = json.loads((outdir / "validation-report.json").read_text(encoding="utf-8"))
    return {
        f"{resource['constructPath'].removesuffix('/Resource')} {violation['ruleName']}"
        for plugin in report["pluginReports"]
        if plugin["pluginName"] == "AwsSolutions"
        for violation in plugin["violations"]
        for resource in violation["violatingConstructs"]
    }


@pytest.mark.parametrize("fixture", ["default_app", "custom_app"])
def test_synth_passes_aws_solutions_checks(fixture: str, request: pytest.FixtureRequest) -> None:
    app: Synthesized = request.getfixturevalue(fixture)  # synth raises on any finding
    report = json.loads((app.outdir / "validation-report.json").read_text(encoding="utf-8"))
    nag = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert all(not plugin["violations"] for plugin in nag)


def test_every_acknowledgment_has_a_specific_reason(default_app: Synthesized) -> None:
    acknowledgments = _acknowledgments(default_app)
    assert acknowledgments, "the stack acknowledges its IAM5 and L1 findings"
    for rule, reason in acknowledgments.items():
        assert len(reason.split()) >= 10, f"{rule}: reason too thin: {reason!r}"


def test_each_acknowledgment_matches_a_real_finding(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, default_app: Synthesized
) -> None:
    """With acknowledgments switched off, synth fails on exactly the acknowledged findings."""
    monkeypatch.setattr(cdk.Validations, "acknowledge", lambda self, *rules: None)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        synthesize({}, tmp_path)
    assert _nag_findings(tmp_path) == set(_acknowledgments(default_app))


def test_nag_is_active_in_the_app_that_cdk_synth_builds(tmp_path: Path) -> None:
    app, stack = build_app(cdk_json_context(), outdir=str(tmp_path))
    sns.Topic(stack, "TopicWithoutTls")
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    assert _nag_findings(tmp_path) == {"EcrSweeper/TopicWithoutTls AwsSolutions-SNS3"}


@pytest.mark.parametrize("fixture", ["default_app", "custom_app"])
def test_cfn_lint_finds_nothing(fixture: str, request: pytest.FixtureRequest) -> None:
    app: Synthesized = request.getfixturevalue(fixture)
    config = cfnlint.api.ManualArgs(
        regions=["us-east-1", "eu-central-1"], ignore_checks=[ONLY_IGNORED_LINT_RULE]
    )
    matches = cfnlint.api.lint_file(app.template_file, config=config)
    assert [str(match) for match in matches] == []
