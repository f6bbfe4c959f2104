"""EKS clusters read natively: every workload kind keeps its images, lists are read whole
(paging, a 410 restart), and a cluster that can't be read deletes nothing anywhere, saying which
cluster and what to do. The Kubernetes API is a double on 127.0.0.1 (helpers.kubernetes)."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from helpers.kubernetes import KubernetesApi, make_authority, pod, point_cluster, workload
from helpers.sweep import push, remaining, sweep

from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.core.settings import Settings
from ecr_sweeper.sweep.targets import sweep_targets
from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
KINDS = (
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "ControllerRevision",
    "ReplicationController",
)


@pytest.fixture
def api() -> Iterator[KubernetesApi]:
    with KubernetesApi() as double:
        yield double


@pytest.fixture
def make() -> ManifestFactory:
    return ManifestFactory(random.Random(21))


def app_images(local_ecr: LocalEcr, make: ManifestFactory, count: int) -> dict[int, str]:
    """app:v0 (oldest) .. app:v{count-1}: keeping 1 deletes all but the newest."""
    return {
        n: push(local_ecr, "app", make.image(compact=True), f"v{n}", 40 - n) for n in range(count)
    }


def kept_reasons(summary: Any) -> dict[str, str]:
    return {
        d.image.digest: str(d.reason)
        for r in summary.results
        if r.plan
        for d in r.plan.decisions
        if d.action == "keep"
    }


def every_kind(api: KubernetesApi, digests: dict[int, str]) -> None:
    """One image per workload kind; v0 by a pod's spec, v1 only by a pod's imageID digest."""
    items = api.state.items
    items["pods"] = [
        pod(
            "shop",
            "web-7c9-abcde",
            # The tag moved on since the pod started: only its imageID names what runs.
            {"name": "web", "image": f"{HOST}/app:v11"},
            init=({"name": "migrate", "image": f"{HOST}/app:v0"},),
            statuses=(
                {
                    "name": "web",
                    "image": f"{HOST}/app:v11",
                    "imageID": f"docker-pullable://{HOST}/app@{digests[1]}",
                },
            ),
        )
    ]
    deployment, replicaset, statefulset, daemonset, job = (
        workload("shop", name, f"{HOST}/app:v{n}")
        for n, name in enumerate(("web", "web-6f8", "db", "agent", "backfill"), start=2)
    )
    replicaset["spec"]["replicas"] = 0  # `kubectl rollout undo` goes back to it
    items["deployments"] = [deployment]
    items["replicasets"] = [replicaset]
    items["statefulsets"] = [statefulset]
    items["daemonsets"] = [daemonset]
    items["jobs"] = [job]
    items["cronjobs"] = [
        {
            "metadata": {"namespace": "ops", "name": "nightly"},
            "spec": {
                "suspend": True,
                "jobTemplate": {"spec": workload("", "", f"{HOST}/app@{digests[7]}")["spec"]},
            },
        }
    ]
    items["controllerrevisions"] = [
        {
            "metadata": {"namespace": "shop", "name": "db-5d4"},
            "data": {"spec": {"template": workload("", "", f"{HOST}/app:v8")["spec"]["template"]}},
        }
    ]
    items["replicationcontrollers"] = [workload("legacy", "old", f"{HOST}/app:v9@{digests[9]}")]


def test_every_workload_kind_keeps_its_image_and_names_its_holder(
    local_ecr: LocalEcr, make: ManifestFactory, api: KubernetesApi
) -> None:
    digests = app_images(local_ecr, make, 11)
    every_kind(api, digests)
    point_cluster(local_ecr, "prod", api)

    summary = sweep(local_ecr, Settings(keep_tagged_images=1))

    assert set(remaining(local_ecr, "app")) == set(digests.values()), "nothing in use deleted"
    reasons = kept_reasons(summary)
    assert "EKS prod: pod shop/web-7c9-abcde (init container migrate)" in reasons[digests[0]]
    assert "EKS prod: pod shop/web-7c9-abcde" in reasons[digests[1]], "known by imageID only"
    assert "EKS prod: Deployment shop/web" in reasons[digests[2]]
    assert "EKS prod: ReplicaSet shop/web-6f8" in reasons[digests[3]], "scaled to 0"
    assert "EKS prod: StatefulSet shop/db" in reasons[digests[4]]
    assert "EKS prod: DaemonSet shop/agent" in reasons[digests[5]]
    assert "EKS prod: Job shop/backfill" in reasons[digests[6]]
    assert "EKS prod: CronJob ops/nightly" in reasons[digests[7]], "suspended"
    assert "EKS prod: ControllerRevision shop/db-5d4" in reasons[digests[8]]
    assert "EKS prod: ReplicationController legacy/old" in reasons[digests[9]]
    assert summary.failures == 0
    assert all(valid for valid in api.state.tokens), "every request carried a token"


def test_without_the_cluster_the_same_images_go(
    local_ecr: LocalEcr, make: ManifestFactory, api: KubernetesApi
) -> None:
    """The control: the kept images above were kept by the cluster and nothing else."""
    digests = app_images(local_ecr, make, 11)
    every_kind(api, digests)
    point_cluster(local_ecr, "prod", api)
    local_ecr.reset_counters()

    sweep(local_ecr, Settings(keep_tagged_images=1, eks_clusters=()))

    assert set(remaining(local_ecr, "app")) == {digests[10]}
    assert not local_ecr.calls_for("eks"), "eksClusters=[] reads no cluster"
    assert not api.state.requests


def test_lists_are_read_whole_across_short_pages_and_an_expired_continue_token(
    local_ecr: LocalEcr, make: ManifestFactory, api: KubernetesApi
) -> None:
    digests = app_images(local_ecr, make, 4)
    api.state.items["pods"] = [
        pod("shop", f"web-{n}", {"name": "web", "image": f"{HOST}/app:v{n % 3}"}) for n in range(12)
    ]
    api.state.max_page = 5  # fewer than the 500 asked for
    api.state.expire_continue = 1  # the first continue token is too old: start that list again
    point_cluster(local_ecr, "prod", api)

    summary = sweep(local_ecr, Settings(keep_tagged_images=1))

    assert set(remaining(local_ecr, "app")) == set(digests.values())
    pods = [query for path, query in api.state.requests if path == "/api/v1/pods"]
    assert [q.get("continue") for q in pods] == [None, "5", None, "5", "10"]
    assert all(q["limit"] == "500" for q in pods)
    assert summary.failures == 0


@pytest.mark.parametrize(("status", "resource"), [(403, "controllerrevisions"), (401, None)])
def test_a_cluster_that_refuses_deletes_nothing_anywhere_and_says_how_to_let_us_in(
    local_ecr: LocalEcr,
    make: ManifestFactory,
    api: KubernetesApi,
    caplog: pytest.LogCaptureFixture,
    status: int,
    resource: str | None,
) -> None:
    digests = app_images(local_ecr, make, 3)
    other = push(local_ecr, "other", make.image(compact=True), None, 30)
    api.state.refuse, api.state.refuse_resource = status, resource
    point_cluster(local_ecr, "prod", api)
    caplog.set_level(logging.ERROR)

    summary = sweep(local_ecr, Settings(keep_tagged_images=1))

    assert set(remaining(local_ecr, "app")) == set(digests.values())
    assert other in remaining(local_ecr, "other")
    assert summary.total("images_deleted") == 0 and summary.failures == 2
    reason = str(summary.results[0].plan.decisions[0].reason)  # type: ignore[union-attr]
    assert "EKS cluster prod" in reason and str(status) in reason
    if resource:
        assert "listing controllerrevisions" in reason
    role = local_ecr.client("sts").get_caller_identity()["Arn"]  # a user here, not a role
    assert f"aws eks create-access-entry --cluster-name prod --principal-arn {role}" in reason, (
        reason
    )
    assert (
        f"aws eks associate-access-policy --cluster-name prod --principal-arn {role}" in reason
        and "--policy-arn arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy "
        "--access-scope type=cluster --region us-east-1"
        in reason
    ), reason
    assert "create-access-entry" in caplog.text


def test_a_cluster_that_times_out_deletes_nothing_anywhere(
    local_ecr: LocalEcr,
    make: ManifestFactory,
    api: KubernetesApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import urllib3

    from ecr_sweeper.aws import kubernetes

    monkeypatch.setattr(kubernetes, "READ_SECONDS", 0.2)
    monkeypatch.setattr(urllib3.util.retry.Retry, "sleep", lambda *args, **kwargs: None)
    digests = app_images(local_ecr, make, 3)
    api.state.delay_seconds = 1.0
    point_cluster(local_ecr, "prod", api)

    summary = sweep(local_ecr, Settings(keep_tagged_images=1))

    assert set(remaining(local_ecr, "app")) == set(digests.values())
    reason = str(summary.results[0].plan.decisions[0].reason)  # type: ignore[union-attr]
    assert "EKS cluster prod" in reason and "timed out" in reason, reason
    assert "create-access-entry" not in reason


def test_a_server_certificate_from_another_ca_is_refused_and_deletes_nothing(
    local_ecr: LocalEcr, make: ManifestFactory, api: KubernetesApi
) -> None:
    digests = app_images(local_ecr, make, 3)
    local_ecr.point_eks_cluster("prod", api.url, make_authority("someone-else").ca_pem)

    summary = sweep(local_ecr, Settings(keep_tagged_images=1))

    assert set(remaining(local_ecr, "app")) == set(digests.values())
    reason = str(summary.results[0].plan.decisions[0].reason)  # type: ignore[union-attr]
    assert "EKS cluster prod" in reason and "TLS" in reason, reason
    assert not api.state.requests, "nothing was sent to a server we could not verify"


def test_only_clusters_the_patterns_name_are_read(
    local_ecr: LocalEcr, make: ManifestFactory, api: KubernetesApi
) -> None:
    digests = app_images(local_ecr, make, 3)
    api.state.items["deployments"] = [workload("shop", "web", f"{HOST}/app:v0")]
    point_cluster(local_ecr, "prod-eu", api)
    with KubernetesApi() as refusing:
        refusing.state.refuse = 403
        point_cluster(local_ecr, "dev", refusing)

        summary = sweep(local_ecr, Settings(keep_tagged_images=1, eks_clusters=("prod-*",)))

        assert not refusing.state.requests
    assert set(remaining(local_ecr, "app")) == {digests[0], digests[2]}
    assert summary.failures == 0


def test_several_clusters_in_two_regions_each_keep_their_own_images(
    local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    make = ManifestFactory(random.Random(5))
    pushed: dict[tuple[str, int], str] = {}
    for region in ("us-east-1", "us-west-2"):
        for n in range(3):
            built = make.image(compact=True)
            pushed[region, n] = local_ecr.push_image(
                "app",
                built.body,
                f"v{n}",
                pushed_at=datetime(2026, 1, 1 + n, tzinfo=UTC),
                media_type=built.media_type,
                region=region,
            )
    with KubernetesApi() as east_a, KubernetesApi() as east_b, KubernetesApi() as west:
        for name, double, region, n in (
            ("a", east_a, "us-east-1", 0),
            ("b", east_b, "us-east-1", 1),
            ("a", west, "us-west-2", 1),
        ):
            host = HOST.replace("us-east-1", region)
            double.state.items["deployments"] = [workload("shop", "web", f"{host}/app:v{n}")]
            point_cluster(local_ecr, name, double, region=region)
        settings = Settings(keep_tagged_images=1, regions=("us-east-1", "us-west-2"))
        target = AwsTarget(region=local_ecr.region, endpoint_url=local_ecr.endpoint_url)
        summary = sweep_targets(target, settings, logging.getLogger("test"), dry_run=False)

    assert summary.failures == 0
    east = set(remaining_in(local_ecr, "us-east-1"))
    west_left = set(remaining_in(local_ecr, "us-west-2"))
    assert east == {pushed["us-east-1", n] for n in (0, 1, 2)}
    assert west_left == {pushed["us-west-2", n] for n in (1, 2)}


def remaining_in(local_ecr: LocalEcr, region: str) -> list[str]:
    client = local_ecr.session().client(
        "ecr", endpoint_url=local_ecr.endpoint_url, region_name=region
    )
    return [d["imageDigest"] for d in client.describe_images(repositoryName="app")["imageDetails"]]
