"""The member-account stack (settings: accounts): the role the sweeper assumes in each member
account, with the same least-privilege ECR, ECS and Lambda actions as the sweeper's own role,
trusting only the sweeper's roles in the sweeper's account.

Deploy it into every member account (`cdk deploy EcrSweeperMember --profile member
--parameters SweeperAccountId=<the sweeper's account>`), or as a StackSet from the template.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from ecr_sweeper.core.settings import StackSettings
from infra.function import SWEEPER_ROLE_PREFIX, sweeper_grants, wildcard_acknowledgments

MEMBER_STACK_ID = "EcrSweeperMember"
MEMBER_GRANTS = (
    "SweepRepositories",
    "EnforceLifecyclePolicies",
    "ListEcs",
    "DescribeEcsTasksAndServices",
    "ListEventRules",
    "ReadEventRuleTargets",
    "ListSchedules",
    "GetSchedules",
    "DescribeBatchJobDefinitions",
    "ListFunctions",
    "GetFunctions",
)
"""What the sweeper does in a member account: its registry (archive and native policies as the
settings say) and every in-use source there. The extra references document and the cursor stay
in the sweeper's own account."""


class EcrSweeperMemberStack(cdk.Stack):
    """One role, named `crossAccountRoleName`, assumable only by the sweeper's roles."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: StackSettings, **kwargs: Any
    ) -> None:
        # No assets and no bootstrap resources: the template deploys as it is, with `cdk deploy`
        # into an account never bootstrapped, or as a StackSet across an organization.
        kwargs.setdefault("synthesizer", cdk.BootstraplessSynthesizer())
        super().__init__(
            scope,
            construct_id,
            description="ecr-sweeper member account: the role the central sweeper assumes",
            **kwargs,
        )
        sweeper_account = cdk.CfnParameter(
            self,
            "SweeperAccountId",
            type="String",
            allowed_pattern="^[0-9]{12}$",
            description="The account the ecr-sweeper stack is deployed in",
        ).value_as_string
        sweeper_roles = f"arn:{self.partition}:iam::{sweeper_account}:role/{SWEEPER_ROLE_PREFIX}*"
        self.role = iam.Role(
            self,
            "Role",
            role_name=settings.cross_account_role_name,
            description="ecr-sweeper: read and delete ECR images for the central sweeper",
            assumed_by=iam.AccountPrincipal(sweeper_account).with_conditions(
                {"ArnLike": {"aws:PrincipalArn": sweeper_roles}}
            ),
            max_session_duration=cdk.Duration.hours(1),
        )
        grants = [g for g in sweeper_grants(self, settings) if g.sid in MEMBER_GRANTS]
        for grant in grants:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid=grant.sid, actions=list(grant.actions), resources=list(grant.resources)
                )
            )
        policy = self.role.node.try_find_child("DefaultPolicy")
        assert policy is not None, "the role's policy is created by add_to_policy above"
        cdk.Validations.of(policy).acknowledge(
            *wildcard_acknowledgments(self, grants, tracing=False)
        )
        cdk.CfnOutput(
            self, "RoleArn", value=self.role.role_arn, description="assumed by the sweeper"
        )
