"""Regions and accounts in the templates: grants in every swept region, sts:AssumeRole on exactly
the member roles, and the member-account stack with its least-privilege, narrowly trusted role."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.infra import actions_of, statements

from ecr_sweeper.aws import permissions
from infra import build_app
from infra.config import cdk_json_context
from infra.member import MEMBER_STACK_ID

MEMBER = "111111111111"


@pytest.fixture(scope="module")
def organization(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Both stacks' templates with accounts and regions set (cdk-nag runs on both)."""
    outdir = tmp_path_factory.mktemp("cdk-organization")
    context = {
        **cdk_json_context(),
        "accounts": json.dumps([MEMBER]),
        "regions": '["us-east-1","eu-west-1"]',
    }
    app, _stack = build_app(context, outdir=str(outdir))
    assembly = app.synth()
    report = json.loads((Path(outdir) / "validation-report.json").read_text("utf-8"))
    assert all(not p["violations"] for p in report["pluginReports"])
    return {s.stack_name: s.template for s in assembly.stacks}


def policy_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        and {"Ref": role} in resource["Properties"]["Roles"]
        for statement in statements(resource["Properties"]["PolicyDocument"])
    ]


def sweeper_role(template: dict[str, Any]) -> str:
    (role,) = {
        resource["Properties"]["Role"]["Fn::GetAtt"][0]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    return role


def flat(value: Any) -> str:
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(flat(part) for part in value["Fn::Join"][1])
    return f"<{value.get('Ref', value)}>"


def test_the_sweeper_may_assume_exactly_the_member_roles(
    organization: dict[str, dict[str, Any]],
) -> None:
    template = organization["EcrSweeper"]
    found = [
        s
        for s in policy_statements(template, sweeper_role(template))
        if "sts:AssumeRole" in actions_of(s)
    ]
    (statement,) = found
    assert actions_of(statement) == ["sts:AssumeRole"]
    assert (
        flat(statement["Resource"]) == f"arn:<AWS::Partition>:iam::{MEMBER}:role/EcrSweeperMember"
    )
    role = template["Resources"][sweeper_role(template)]["Properties"]
    assert flat(role["RoleName"]) == "ecr-sweeper-<AWS::Region>"


def test_grants_cover_every_swept_region(organization: dict[str, dict[str, Any]]) -> None:
    template = organization["EcrSweeper"]
    (ecr,) = [
        s
        for s in policy_statements(template, sweeper_role(template))
        if s.get("Sid") == "SweepRepositories"
    ]
    regions = sorted(flat(r).split(":ecr:")[1].split(":")[0] for r in ecr["Resource"])
    assert regions == ["eu-west-1", "us-east-1"]


def test_the_member_stack_role_reads_and_deletes_and_trusts_only_the_sweepers_roles(
    organization: dict[str, dict[str, Any]],
) -> None:
    template = organization[MEMBER_STACK_ID]
    (role_id,) = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
    role = template["Resources"][role_id]["Properties"]
    assert role["RoleName"] == "EcrSweeperMember"
    (trust,) = statements(role["AssumeRolePolicyDocument"])
    assert flat(trust["Principal"]["AWS"]) == "arn:<AWS::Partition>:iam::<SweeperAccountId>:root"
    # The exact roles, never a pattern: no other role of the sweeper's account, whatever its
    # name or path, can assume this one.
    assert list(trust["Condition"]) == ["ArnEquals"]
    trusted = [flat(arn) for arn in trust["Condition"]["ArnEquals"]["aws:PrincipalArn"]]
    assert trusted == [
        "arn:<AWS::Partition>:iam::<SweeperAccountId>:role/ecr-sweeper-<SweeperRegion>"
    ]
    granted = {a for s in policy_statements(template, role_id) for a in actions_of(s)}
    expected = {
        *permissions.ECR_REPOSITORY_ACTIONS,
        *permissions.ECR_REGISTRY_ACTIONS,
        *permissions.ECS_ACTIONS,
        *permissions.ECS_ROLLBACK_ACTIONS,
        *permissions.ECS_TASK_DEFINITION_ACTIONS,
        *permissions.EVENTS_ACTIONS,
        *permissions.SCHEDULER_ACTIONS,
        *permissions.BATCH_ACTIONS,
        *permissions.LAMBDA_ACTIONS,
        *permissions.SAGEMAKER_ACTIONS,
        *permissions.CODEBUILD_ACTIONS,
        *permissions.EKS_ACTIONS,
    }
    assert granted == expected, "every in-use source is read in the member account too"
    assert template["Parameters"]["SweeperAccountId"]["AllowedPattern"] == "^[0-9]{12}$"
    # StackSets-ready: no bootstrap version parameter or rule, no assets.
    assert set(template["Parameters"]) == {"SweeperAccountId", "SweeperRegion"}
    assert "Rules" not in template


def test_without_accounts_there_is_no_member_stack_and_no_assume_role() -> None:
    app, _stack = build_app(cdk_json_context())
    names = [child.node.id for child in app.node.children]
    assert MEMBER_STACK_ID not in names


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("accounts", '["12345"]', r"accounts \(-c\): got"),
        ("accounts", '["111111111111","111111111111"]', "without repeats"),
        ("regions", "us-east-1,mars", r"regions \(-c\): got"),
        ("crossAccountRoleName", "a role", r"crossAccountRoleName \(-c\): got"),
    ],
)
def test_targets_are_validated(key: str, value: str, message: str) -> None:
    from ecr_sweeper.core.settings import SettingsError

    with pytest.raises(SettingsError, match=message):
        build_app({**cdk_json_context(), key: value})


def test_the_member_role_trusts_exactly_the_roles_that_assume_it(tmp_path: Path) -> None:
    """With the fan-out, List, Plan and Sweep assume the member role too: each of the sweeper
    stack's roles granted sts:AssumeRole is named, and the member role trusts exactly those
    names."""
    context = {**cdk_json_context(), "accounts": json.dumps([MEMBER]), "fanOut": True}
    app, _stack = build_app(context, outdir=str(tmp_path))
    templates = {s.stack_name: s.template for s in app.synth().stacks}
    sweeper = templates["EcrSweeper"]
    assuming = sorted(
        flat(sweeper["Resources"][role_id]["Properties"]["RoleName"])
        for role_id, role in sweeper["Resources"].items()
        if role["Type"] == "AWS::IAM::Role"
        and any("sts:AssumeRole" in actions_of(s) for s in policy_statements(sweeper, role_id))
    )
    assert assuming == [
        "ecr-sweeper-<AWS::Region>",
        "ecr-sweeper-list-<AWS::Region>",
        "ecr-sweeper-plan-<AWS::Region>",
        "ecr-sweeper-sweep-<AWS::Region>",
    ]
    member = templates[MEMBER_STACK_ID]
    (role_id,) = [k for k, r in member["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
    (trust,) = statements(member["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"])
    trusted = sorted(flat(arn) for arn in trust["Condition"]["ArnEquals"]["aws:PrincipalArn"])
    prefix = "arn:<AWS::Partition>:iam::<SweeperAccountId>:role/"
    assert trusted == sorted(
        prefix + name.replace("<AWS::Region>", "<SweeperRegion>") for name in assuming
    )
