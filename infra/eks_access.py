"""EKS access entries: the clusters `eksClusters` names without a wildcard let the roles that
read the images in use list their workloads (AmazonEKSViewPolicy, cluster scope, nothing more).

Clusters matched by a wildcard are only known at run time: the README gives the two commands,
and a refused run prints them.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_eks as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from ecr_sweeper.aws.eks import VIEW_POLICY


def named_clusters(patterns: Sequence[str]) -> list[str]:
    """The patterns that name one cluster exactly (no `*` or `?`)."""
    return [p for p in dict.fromkeys(patterns) if "*" not in p and "?" not in p]


class EksViewAccess(Construct):
    """One access entry per named cluster and role, in the stack's account and region."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        clusters: Sequence[str],
        roles: Sequence[iam.IRole],
    ) -> None:
        super().__init__(scope, construct_id)
        self.entries: list[eks.CfnAccessEntry] = []
        for cluster in named_clusters(clusters):
            for number, role in enumerate(roles):
                self.entries.append(
                    eks.CfnAccessEntry(
                        self,
                        f"{cluster}-{number}" if number else cluster,
                        cluster_name=cluster,
                        principal_arn=role.role_arn,
                        type="STANDARD",
                        access_policies=[
                            eks.CfnAccessEntry.AccessPolicyProperty(
                                policy_arn=VIEW_POLICY,
                                access_scope=eks.CfnAccessEntry.AccessScopeProperty(type="cluster"),
                            )
                        ],
                    )
                )
