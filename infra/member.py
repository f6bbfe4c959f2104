"""The member-account stack (settings: accounts): the role the sweeper assumes in each member
account, with the same least-privilege ECR, ECS and Lambda actions as the sweeper's own role,
trusting only the sweeper's roles in the sweeper's account.

Deploy it into every member account (`cdk deploy EcrSweeperMember --profile member
--parameters SweeperAccountId=<the sweeper's account> --parameters SweeperRegion=<its region>`),
or as a StackSet from the template.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from ecr_sweeper.core.settings import StackSettings
from infra.eks_access import EksViewAccess
from infra.function import apply_permissions_boundary, assuming_role_names
from infra.grants import (
    Grant,
    grant_all,
    in_use_grants,
    registry_listing_grants,
    repository_grants,
)

MEMBER_STACK_ID = "EcrSweeperMember"


def member_grants(scope: Construct, settings: StackSettings) -> list[Grant]:
    """What the sweeper does in a member account: list its registry, read and delete in the
    selected repositories (archive and native policies as the settings say), and read every
    in-use source there. The extra references document and the cursor stay in the sweeper's
    own account, read with its own credentials."""
    return [
        *registry_listing_grants(scope, settings),
        *repository_grants(scope, settings),
        *in_use_grants(scope, settings),
    ]


class EcrSweeperMemberStack(cdk.Stack):
    """One role, named `crossAccountRoleName`, assumable only by the sweeper's roles, by their
    exact ARNs (never a name pattern another role could match)."""

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
        apply_permissions_boundary(self, settings)
        sweeper_account = cdk.CfnParameter(
            self,
            "SweeperAccountId",
            type="String",
            allowed_pattern="^[0-9]{12}$",
            description="The account the ecr-sweeper stack is deployed in",
        ).value_as_string
        sweeper_region = cdk.CfnParameter(
            self,
            "SweeperRegion",
            type="String",
            allowed_pattern="^[a-z]{2}(-[a-z]+)+-[0-9]+$",
            description="The region the ecr-sweeper stack is deployed in (its roles are named "
            "after it)",
        ).value_as_string
        self.trusted_roles = [
            f"arn:{self.partition}:iam::{sweeper_account}:role/{name}"
            for name in assuming_role_names(settings, sweeper_region)
        ]
        self.role = iam.Role(
            self,
            "Role",
            role_name=settings.cross_account_role_name,
            description="ecr-sweeper: read and delete ECR images for the central sweeper",
            assumed_by=iam.AccountPrincipal(sweeper_account).with_conditions(
                {"ArnEquals": {"aws:PrincipalArn": self.trusted_roles}}
            ),
            max_session_duration=cdk.Duration.hours(1),
        )
        grant_all(self.role, member_grants(self, settings), tracing=False)
        EksViewAccess(self, "EksAccess", clusters=settings.eks_clusters, roles=[self.role])
        cdk.CfnOutput(
            self, "RoleArn", value=self.role.role_arn, description="assumed by the sweeper"
        )
