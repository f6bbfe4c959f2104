"""The one module that talks to EKS: which clusters exist, and what their workloads run.

Each cluster whose name matches `eksClusters` is described (endpoint and CA), then its
Kubernetes API is read with a token signed for it (`aws.sts.eks_token`, as `aws eks get-token`
makes it): pods by their spec images and by the digests they run (`imageID`), and every pod
template that can start a pod again (Deployments, every ReplicaSet, StatefulSets, DaemonSets,
ControllerRevisions, Jobs, CronJobs, ReplicationControllers).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecr_sweeper.aws.kubernetes import RESOURCES, KubernetesError, KubernetesLists

VIEW_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
_KINDS = {
    "pods": "pod",
    "replicationcontrollers": "ReplicationController",
    "deployments": "Deployment",
    "replicasets": "ReplicaSet",
    "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet",
    "controllerrevisions": "ControllerRevision",
    "jobs": "Job",
    "cronjobs": "CronJob",
}
_RUNTIME_PREFIXES = ("docker-pullable://", "docker://", "containerd://", "cri-o://")
"""How container runtimes may prefix a status `imageID`."""
_CONTAINER_KINDS = (
    ("containers", "containerStatuses", ""),
    ("initContainers", "initContainerStatuses", "init container "),
    ("ephemeralContainers", "ephemeralContainerStatuses", "ephemeral container "),
)


class ClusterUnreadable(Exception):
    """A cluster whose images could not be read whole; the message names it and what to do."""

    def __init__(self, cluster: str, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.cluster, self.refused = cluster, refused


@dataclass(frozen=True)
class Cluster:
    name: str
    endpoint: str
    ca_pem: str


class EksClusters:
    """The clusters of one account and region that `patterns` name, described."""

    def __init__(self, client: Any, patterns: tuple[str, ...]) -> None:
        self._client = client
        self._patterns = patterns

    def names(self) -> list[str]:
        found: list[str] = []
        for page in self._client.get_paginator("list_clusters").paginate():
            found += [
                name
                for name in page.get("clusters", [])
                if any(fnmatch.fnmatchcase(name, p) for p in self._patterns)
            ]
        return sorted(found)

    def describe(self, name: str) -> Cluster | None:
        """Its endpoint and CA; None for a cluster still being created with no API server yet
        (nothing can run on it)."""
        try:
            cluster = self._client.describe_cluster(name=name)["cluster"]
        except (ClientError, BotoCoreError) as error:
            raise ClusterUnreadable(
                name, f"EKS cluster {name} can't be described: {error}"
            ) from error
        endpoint = cluster.get("endpoint")
        data = (cluster.get("certificateAuthority") or {}).get("data")
        if not endpoint and cluster.get("status") == "CREATING":
            return None
        if not endpoint or not data:
            raise ClusterUnreadable(
                name,
                f"EKS cluster {name} (status {cluster.get('status', '?')}) has no API endpoint "
                "or CA yet",
            )
        try:
            ca_pem = base64.b64decode(data, validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise ClusterUnreadable(
                name, f"EKS cluster {name}: its certificate authority is not base64 PEM"
            ) from error
        return Cluster(name, endpoint, ca_pem)


def cluster_references(
    cluster: Cluster, token: Callable[[], str], **options: Any
) -> Iterator[tuple[str, str]]:
    """(image reference, holder) of everything the cluster runs or can start again."""
    lists = KubernetesLists(cluster.endpoint, cluster.ca_pem, token, **options)
    for resource, path in RESOURCES:
        kind = _KINDS[resource]
        try:
            for item in lists.items(resource, path):
                yield from _item_images(cluster.name, kind, item)
        except KubernetesError as error:
            raise ClusterUnreadable(
                cluster.name,
                f"EKS cluster {cluster.name}: {error}",
                refused=error.status in (401, 403),
            ) from error


def access_commands(cluster: str, region: str | None, principal: str | None) -> str:
    """The two AWS CLI commands that let `principal` read the cluster (AmazonEKSViewPolicy)."""
    where = f" --region {region}" if region else ""
    who = principal or "ROLE_ARN"
    return (
        f"aws eks create-access-entry --cluster-name {cluster} --principal-arn {who}{where}; "
        f"aws eks associate-access-policy --cluster-name {cluster} --principal-arn {who} "
        f"--policy-arn {VIEW_POLICY} --access-scope type=cluster{where}"
    )


def _item_images(cluster: str, kind: str, item: dict[str, Any]) -> Iterator[tuple[str, str]]:
    metadata = item.get("metadata") or {}
    holder = f"EKS {cluster}: {kind} {metadata.get('namespace', '')}/{metadata.get('name', '?')}"
    if kind == "pod":
        yield from _pod_images(holder, item.get("spec") or {}, item.get("status") or {})
        return
    yield from _pod_images(holder, _template_spec(kind, item), {})


def _template_spec(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    """The pod spec a workload starts pods from."""
    if kind == "ControllerRevision":
        spec = ((item.get("data") or {}).get("spec") or {}).get("template") or {}
    elif kind == "CronJob":
        job = ((item.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}
        spec = job.get("template") or {}
    else:
        spec = (item.get("spec") or {}).get("template") or {}
    found = spec.get("spec") if isinstance(spec, dict) else None
    return found if isinstance(found, dict) else {}


def _pod_images(
    holder: str, spec: dict[str, Any], status: dict[str, Any]
) -> Iterator[tuple[str, str]]:
    """Spec images and, from the status, what each container really runs (tag and digest)."""
    for spec_key, status_key, label in _CONTAINER_KINDS:
        for container in [*(spec.get(spec_key) or []), *(status.get(status_key) or [])]:
            if not isinstance(container, dict):
                continue
            named = f"{holder} ({label}{container.get('name', '?')})" if label else holder
            if container.get("image"):
                yield str(container["image"]), named
            image_id = str(container.get("imageID") or "")
            for prefix in _RUNTIME_PREFIXES:
                image_id = image_id.removeprefix(prefix)
            if "@" in image_id:  # a repository digest; a bare sha256:… is a local image id
                yield image_id, named
