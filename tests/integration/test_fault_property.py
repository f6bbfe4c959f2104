"""Faults prove the promise: on random registries, a sweep under throttling, 5xx and lost
responses deletes only what a fault-free sweep deletes, reports failures only for what really
stayed, and a second run converges to the fault-free end state."""

from __future__ import annotations

import logging
import random

from helpers.sweep import push, remaining, sweep
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecr_sweeper.core.settings import Settings
from ecr_sweeper.sweep.guard import RunGuard
from local_ecr import LocalEcr
from local_ecr.manifests import SPDX_JSON, ManifestFactory, cosign_tag

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
KEEP_TWO = Settings(keep_tagged_images=2)


def build(local_ecr: LocalEcr, seed: int) -> None:
    """A random registry with multi-arch indexes, signatures, SBOMs and an image in use; the
    same seed builds the same images (digests and ages)."""
    rng = random.Random(seed)
    make = ManifestFactory(random.Random(seed))
    in_use: list[str] = []
    for number in range(rng.randint(1, 3)):
        repository = f"team/app-{number}"
        for step in range(rng.randint(2, 9)):
            days = rng.choice((0.2, 3, 20, 60)) + step
            tag = f"v{step}" if rng.random() < 0.7 else None
            if rng.random() < 0.3:
                children = [make.image(oci=True, compact=True) for _ in range(rng.randint(1, 2))]
                for child in children:
                    push(local_ecr, repository, child, None, days)
                platforms = [(c, f"linux/arch{n}") for n, c in enumerate(children)]
                subject = make.index(platforms)
            else:
                subject = make.image(oci=True, compact=True)
            digest = push(local_ecr, repository, subject, tag, days)
            if rng.random() < 0.3:
                push(local_ecr, repository, make.referrer(subject, SPDX_JSON), None, days)
            if rng.random() < 0.2:
                signature = make.cosign("sig")
                push(local_ecr, repository, signature, cosign_tag(digest, "sig"), days)
            if tag and rng.random() < 0.15:
                in_use.append(f"{HOST}/{repository}:{tag}")
    if in_use:
        ecs = local_ecr.client("ecs")
        ecs.create_cluster(clusterName="prod")
        containers = [
            {"name": f"c{n}", "image": image, "memory": 64} for n, image in enumerate(in_use)
        ]
        definition = ecs.register_task_definition(family="job", containerDefinitions=containers)
        arn = definition["taskDefinition"]["taskDefinitionArn"]
        ecs.run_task(cluster="prod", taskDefinition=arn, launchType="FARGATE")


def state(local_ecr: LocalEcr) -> dict[str, set[str]]:
    client = local_ecr.client("ecr")
    names = [r["repositoryName"] for r in client.describe_repositories()["repositories"]]
    return {name: set(remaining(local_ecr, name)) for name in names}


def fresh(local_ecr: LocalEcr, seed: int) -> dict[str, set[str]]:
    local_ecr.reset()
    local_ecr.faults.clear()
    local_ecr.digest_and_tag_deletes_image = False
    build(local_ecr, seed)
    return state(local_ecr)


@settings(
    max_examples=8,
    derandomize=True,  # the same registries every run: CI can't flake
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(min_value=0, max_value=10_000), whole_image=st.booleans())
def test_faults_never_delete_more_and_a_second_run_converges(
    local_ecr: LocalEcr, seed: int, whole_image: bool
) -> None:
    before = fresh(local_ecr, seed)
    log = logging.getLogger("test.fault")
    clean = sweep(local_ecr, KEEP_TWO, guard=RunGuard(KEEP_TWO, log))
    assert clean.guard is not None
    expected = clean.guard.would_delete
    if clean.held:  # the default guard held it: nothing went; approve exactly what it planned
        assert state(local_ecr) == before
        clean = sweep(local_ecr, KEEP_TWO, guard=RunGuard(KEEP_TWO, log, expected=expected))
    # every later run is guarded by the number the clean run planned, as an approval is
    guard = RunGuard(KEEP_TWO, log, expected=expected)
    assert not clean.held
    clean_left = state(local_ecr)
    clean_deleted = {name: before[name] - clean_left[name] for name in before}
    assert clean.failures == 0

    fresh(local_ecr, seed)
    local_ecr.digest_and_tag_deletes_image = whole_image
    rules = [
        local_ecr.faults.throttle(rate=0.2),
        local_ecr.faults.error(500, rate=0.05),
        local_ecr.faults.lose_response(rate=0.03),
    ]
    faulty = sweep(local_ecr, KEEP_TWO, max_concurrency=4, guard=guard)
    assert not faulty.held, "faults only ever plan fewer deletions"
    assert sum(rule.fired for rule in rules) > 0, "the faults really fired"
    local_ecr.faults.clear()  # the test's own reads go without faults
    faulty_left = state(local_ecr)
    for name in before:
        deleted = before[name] - faulty_left[name]
        assert deleted <= clean_deleted[name], "faults never delete what a clean run keeps"
        assert clean_left[name] <= faulty_left[name]
    for result in faulty.results:
        for failure in result.delete_failures:
            digest = failure.image_id.get("imageDigest")
            assert digest in faulty_left[result.repository], "a failure names what stayed"

    again = sweep(local_ecr, KEEP_TWO, guard=guard)
    assert state(local_ecr) == clean_left, "a second run converges to the fault-free end"
    assert again.failures == 0
