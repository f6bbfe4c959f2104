"""Image references as ECS, Lambda and users write them: a missed one would be deleted."""

from __future__ import annotations

import pytest

from ecr_sweeper.core.references import InUse, ReferenceError, parse_reference

DIGEST = "sha256:" + "ab" * 32
ACCOUNT, REGION = "123456789012", "eu-west-1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/team/app:v1", ("team/app", "v1", None)),
        (f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/app@{DIGEST}", ("app", None, DIGEST)),
        (f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/app:v1@{DIGEST}", ("app", "v1", DIGEST)),
        (f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/app", ("app", None, None)),
        (f"{ACCOUNT}.dkr.ecr-fips.{REGION}.amazonaws.com/app:v1", ("app", "v1", None)),
        (f"{ACCOUNT}.dkr-ecr.{REGION}.on.aws/app:v1", ("app", "v1", None)),
        (f"{ACCOUNT}.DKR.ECR.{REGION.upper()}.AMAZONAWS.COM:443/app:v1", ("app", "v1", None)),
        (
            f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/app@{DIGEST.upper()[:7].lower()}{DIGEST[7:].upper()}",
            ("app", None, DIGEST),
        ),
        (
            f"  {ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/docker-hub/library/nginx:1.27 ",
            ("docker-hub/library/nginx", "1.27", None),
        ),
    ],
)
def test_ecr_references_name_the_registry_repository_tag_and_digest(
    text: str, expected: tuple[str, str | None, str | None]
) -> None:
    reference = parse_reference(text)
    assert reference.registry == (ACCOUNT, REGION.lower())
    assert (reference.repository, reference.tag, reference.digest) == expected


def test_china_and_isolated_partitions_are_ecr_too() -> None:
    for suffix in ("amazonaws.com.cn", "c2s.ic.gov", "sc2s.sgov.gov", "cloud.adc-e.uk"):
        assert parse_reference(f"{ACCOUNT}.dkr.ecr.{REGION}.{suffix}/app:v1").registry is not None


def test_images_of_other_registries_are_not_ours() -> None:
    for text in ("nginx:1.27", "public.ecr.aws/lambda/python:3.12", "ghcr.io/org/app@" + DIGEST):
        assert parse_reference(text).registry is None


def test_a_broken_digest_is_refused() -> None:
    with pytest.raises(ReferenceError, match="not a sha256 digest"):
        parse_reference(f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/app@sha256:123")


def test_in_use_holds_tags_and_digests_per_repository_and_flags_unreadable_ecr_strings() -> None:
    in_use = InUse()
    in_use.add(f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/app:v1@{DIGEST}", "ECS service a/b")
    in_use.add(f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/app", "Lambda function f:1")
    in_use.add("nginx:latest", "ECS task a/1")
    in_use.add(f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/app@sha256:zz", "ECS task a/2")
    in_use.add(f"{ACCOUNT}.dkr.ecr.{REGION}.example.com/app:v1", "ECS task a/3")
    by_digest, by_tag = in_use.for_repository(ACCOUNT, REGION, "app")
    assert by_digest == {DIGEST: "ECS service a/b"}
    assert by_tag == {"v1": "ECS service a/b", "latest": "Lambda function f:1"}
    assert len(in_use.unparsed) == 2, "ECR-looking strings that can't be read are never ignored"
