"""The stack's side of the in-use sources SageMaker, CodeBuild and EKS: grants that follow the
settings, access entries for clusters named without a wildcard (main and member stacks), and
the functions that read the images in use placed in a VPC when asked."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from helpers.infra import actions_of, policy_documents, statements

from ecr_sweeper.aws import permissions
from ecr_sweeper.aws.eks import VIEW_POLICY
from infra import build_app
from infra.config import cdk_json_context
from infra.member import MEMBER_STACK_ID

SUBNETS = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
GROUPS = ["sg-0123456789abcdef0"]


def templates(tmp_path: Path, **overrides: Any) -> dict[str, dict[str, Any]]:
    """Every stack's template (cdk-nag checks each: a finding raises)."""
    context = {**cdk_json_context(), **overrides}
    app, _stack = build_app(context, outdir=str(tmp_path))
    return {s.stack_name: s.template for s in app.synth().stacks}


def granted(template: dict[str, Any]) -> dict[str, list[Any]]:
    """Action: resources, over every policy of the template."""
    found: dict[str, list[Any]] = {}
    for _, document in policy_documents(template):
        for statement in statements(document):
            resources = statement.get("Resource", [])
            for action in actions_of(statement):
                found.setdefault(action, []).extend(
                    resources if isinstance(resources, list) else [resources]
                )
    return found


def flat(value: Any) -> str:
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(flat(part) for part in value["Fn::Join"][1])
    if "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    return f"<{value.get('Ref', value)}>"


def entries(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::EKS::AccessEntry"
    ]


def test_by_default_every_source_is_granted_and_no_access_entry_is_made(tmp_path: Path) -> None:
    (template,) = templates(tmp_path).values()
    actions = granted(template)
    for action in (
        *permissions.SAGEMAKER_ACTIONS,
        *permissions.CODEBUILD_ACTIONS,
        *permissions.EKS_ACTIONS,
    ):
        assert action in actions, action
    assert [flat(r) for r in actions["eks:DescribeCluster"]] == [
        "arn:<AWS::Partition>:eks:<AWS::Region>:<AWS::AccountId>:cluster/*"
    ]
    assert actions["eks:ListClusters"] == ["*"]
    assert not entries(template), "'*' names no cluster: the README's commands apply"


def test_sources_switched_off_are_not_granted(tmp_path: Path) -> None:
    (template,) = templates(
        tmp_path,
        eksClusters="[]",
        protectSageMakerImages="false",
        protectCodeBuildImages=False,
    ).values()
    prefixes = {action.split(":")[0] for action in granted(template)}
    assert not prefixes & {"eks", "sagemaker", "codebuild"}
    assert not entries(template)


def test_clusters_named_without_a_wildcard_get_a_view_entry_in_both_stacks(
    tmp_path: Path,
) -> None:
    found = templates(
        tmp_path,
        eksClusters='["prod", "staging", "dev-*", "team-?"]',
        accounts='["111111111111"]',
    )
    main = next(t for name, t in found.items() if name != MEMBER_STACK_ID)
    for template in (main, found[MEMBER_STACK_ID]):
        made = entries(template)
        assert sorted(e["ClusterName"] for e in made) == ["prod", "staging"]
        for entry in made:
            assert entry["Type"] == "STANDARD"
            assert entry["AccessPolicies"] == [
                {"PolicyArn": VIEW_POLICY, "AccessScope": {"Type": "cluster"}}
            ]
            assert "KubernetesGroups" not in entry and "Username" not in entry
        roles = {flat(e["PrincipalArn"]) for e in made}
        (role,) = roles
        functions = [
            r["Properties"]["Role"]
            for r in template["Resources"].values()
            if r["Type"] == "AWS::Lambda::Function"
        ]
        if template is main:
            assert {flat(f) for f in functions} == roles, "the sweeper's role"
        else:
            assert role.startswith("<") and role.endswith(".Arn>"), "the member role"
        described = sorted(flat(r) for r in granted(template)["eks:DescribeCluster"])
        assert [d.rsplit("/", 1)[1] for d in described] == ["dev-*", "prod", "staging", "team-?"]


def test_vpc_settings_put_the_functions_that_read_images_in_use_in_the_vpc(
    tmp_path: Path,
) -> None:
    (template,) = templates(
        tmp_path,
        vpcSubnetIds=json.dumps(SUBNETS),
        vpcSecurityGroupIds=",".join(GROUPS),
        fanOut=True,
    ).values()
    functions = {
        logical: r
        for logical, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function"
    }
    in_vpc = {logical: r for logical, r in functions.items() if "VpcConfig" in r["Properties"]}
    assert sorted(in_vpc) == sorted(
        logical for logical in functions if logical.startswith(("Sweeper", "FanOutList"))
    ), "the single Lambda and the fan-out's List step; Sweep and Summarize read no cluster"
    for logical, function in in_vpc.items():
        assert function["Properties"]["VpcConfig"] == {
            "SubnetIds": SUBNETS,
            "SecurityGroupIds": GROUPS,
        }
        (policy,) = [d for d in function.get("DependsOn", []) if "VpcAccess" in d]
        document = template["Resources"][policy]["Properties"]["PolicyDocument"]
        (statement,) = statements(document)
        assert set(actions_of(statement)) == {
            "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSubnets",
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
        }, logical


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"vpcSubnetIds": SUBNETS}, "vpcSubnetIds: a function in a VPC needs both"),
        ({"vpcSecurityGroupIds": GROUPS}, "set vpcSubnetIds too, or neither"),
        ({"vpcSubnetIds": "subnet-xyz", "vpcSecurityGroupIds": GROUPS}, "vpcSubnetIds"),
        ({"eksClusters": "prod cluster"}, "eksClusters"),
        ({"eksClusters": ""}, "write [] for no cluster (EKS off)"),
    ],
)
def test_bad_eks_and_vpc_settings_fail_synth_with_the_key_named(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    from ecr_sweeper.core.settings import SettingsError

    with pytest.raises(SettingsError, match=re.escape(message)):
        templates(tmp_path, **overrides)
