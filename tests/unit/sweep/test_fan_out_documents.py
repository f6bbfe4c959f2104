"""The fan-out's documents (work items, in-use snapshot, results) survive their trip through S3,
and the target settings parse like every other setting."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from ecr_sweeper.core.references import InUse
from ecr_sweeper.core.results import FAILED, RepositoryResult
from ecr_sweeper.core.settings import Settings, SettingsError
from ecr_sweeper.ports import DeleteFailure, Repository
from ecr_sweeper.sweep.fan_out import (
    BatchError,
    CheckedBatch,
    batches,
    checked_batch,
    child_run,
    encoded_size,
    in_use_document,
    in_use_from_document,
    result_from_dict,
    work_entry,
)
from ecr_sweeper.sweep.targets import TargetSpec, role_arns, target_specs

ARN = "arn:aws:ecr:us-east-1:123456789012:repository/"


def test_batches_cover_every_repository_once_in_name_order() -> None:
    repositories = [Repository(name, ARN + name) for name in ("c", "a", "e", "b", "d")]
    grouped = batches(repositories, 2)
    assert [[r.name for r in group] for group in grouped] == [["a", "b"], ["c", "d"], ["e"]]
    assert batches([], 3) == []


def named(count: int, length: int) -> list[Repository]:
    """`count` repositories whose names are `length` characters, shuffled."""
    names = [f"team/service-{n:05d}-".ljust(length, "x") for n in range(count)]
    return [Repository(name, ARN + name) for name in reversed(names)]


def listed_size(group: list[Repository]) -> int:
    return encoded_size([work_entry(r) for r in group])


def test_batches_are_cut_by_count_when_the_names_are_short() -> None:
    grouped = batches(named(250, 10), 100, max_bytes=200_000)
    assert [len(group) for group in grouped] == [100, 100, 50]


def test_batches_are_cut_by_bytes_when_the_names_are_long() -> None:
    repositories = named(1000, 100)
    assert listed_size(repositories) > 200_000, "one count-sized batch would pass the limit"
    grouped = batches(repositories, 1000, max_bytes=200_000, overhead=500)
    assert len(grouped) == 2
    assert all(500 - 2 + listed_size(group) <= 200_000 for group in grouped)
    # Filled greedily: one more repository would not have fitted in the first batch.
    assert 500 - 2 + listed_size([*grouped[0], grouped[1][0]]) > 200_000


def test_batches_keep_name_order_and_every_repository_exactly_once() -> None:
    repositories = named(700, 200)
    grouped = batches(repositories, 64, max_bytes=20_000, overhead=300)
    flat = [r.name for group in grouped for r in group]
    assert flat == sorted(r.name for r in repositories)
    assert all(0 < len(group) <= 64 and 298 + listed_size(group) <= 20_000 for group in grouped)


def test_a_byte_limit_that_fits_exactly_is_not_cut() -> None:
    repositories = named(3, 40)
    exact = listed_size(repositories)
    assert len(batches(repositories, 10, max_bytes=exact)) == 1
    assert len(batches(repositories, 10, max_bytes=exact - 1)) == 2


def test_a_repository_too_large_for_any_batch_is_a_clear_error() -> None:
    (huge,) = named(1, 256)
    with pytest.raises(BatchError, match=r"repository 'team/service-00000-x+': its work item"):
        batches([huge], 10, max_bytes=300)


@pytest.mark.parametrize(
    ("size", "overhead", "message"),
    [(0, 2, "size must be at least 1"), (5, 1_000, "leaves no room under 1000")],
)
def test_batches_refuse_a_size_or_overhead_that_leaves_no_room(
    size: int, overhead: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        batches(named(2, 10), size, max_bytes=1_000, overhead=overhead)


def test_the_in_use_snapshot_round_trips_and_keeps_its_doubt() -> None:
    in_use = InUse()
    in_use.add("123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1", "ECS service prod/web")
    digest = "sha256:" + "a" * 64
    in_use.add(f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/api@{digest}", "Lambda fn:3")
    back = in_use_from_document(in_use_document(in_use, None))
    assert back.in_use.by_repository == in_use.by_repository and back.uncertain is None
    assert in_use_from_document(in_use_document(InUse(), "ECS: AccessDenied")).uncertain == (
        "ECS: AccessDenied"
    )


@pytest.mark.parametrize("document", [{}, {"repositories": [{"account": "1"}]}, [], None])
def test_a_malformed_snapshot_is_an_error_never_an_empty_one(document: object) -> None:
    with pytest.raises(BatchError, match="in-use snapshot: malformed"):
        in_use_from_document(document)


def test_a_result_round_trips_through_its_dict() -> None:
    result = RepositoryResult(
        "web",
        status=FAILED,
        reason="boom",
        error_code="ServerException",
        images_scanned=9,
        images_expired=4,
        images_deleted=3,
        bytes_expired=400,
        bytes_reclaimed=300,
        delete_failures=[DeleteFailure({"imageDigest": "sha256:x"}, "ImageNotFound", "gone")],
        kept_by_protection=Counter({"in-use": 2}),
        target="111111111111/eu-west-1",
    )
    assert result_from_dict(result.to_dict()) == result


LABEL = "self/us-east-1"
RUN = {
    "runId": "run-1",
    "dryRun": False,
    "batches": [{"target": LABEL, "repositories": ["app", "web"]}],
    "snapshots": {LABEL: "0" * 64},
}


def item(**changes: object) -> dict[str, object]:
    genuine: dict[str, object] = {
        "runId": "run-1",
        "dryRun": False,
        "batch": 0,
        "target": {"account": None, "region": None, "label": LABEL},
        "repositories": [{"name": name, "arn": ARN + name} for name in ("app", "web")],
    }
    return {**genuine, **changes}


def check(work_item: object, settings: Settings | None = None) -> CheckedBatch:
    return checked_batch(
        work_item,
        "run-1",
        RUN,
        settings or Settings(),
        account="123456789012",
        region="us-east-1",
        partition="aws",
    )


def test_a_work_item_list_wrote_is_taken_as_it_is() -> None:
    batch = check(item())
    assert [r.arn for r in batch.repositories] == [ARN + "app", ARN + "web"]
    assert (batch.number, batch.label, batch.dry_run) == (0, LABEL, False)
    assert batch.snapshot_sha256 == "0" * 64
    dry = check(item(dryRun=True), Settings(dry_run=True))
    assert dry.dry_run is True


@pytest.mark.parametrize(
    ("forged", "message"),
    [
        (None, "expected the keys"),
        (item(bucket="elsewhere"), "expected the keys"),
        (
            item(
                repositories=[
                    {"name": "app", "arn": ARN + "web"},
                    {"name": "web", "arn": ARN + "web"},
                ]
            ),
            "the ARN given for 'app' is not that repository's",
        ),
        (item(dryRun=True), "dryRun True, but the settings and the run say False"),
        (item(runId="run-0"), "runId 'run-0' is not this execution's 'run-1'"),
        (item(batch=1), "batch 1 is not one of the run's 1"),
        (item(batch=True), "batch True is not one of the run's 1"),
        (
            item(repositories=[{"name": n, "arn": ARN + n} for n in ("app", "prod", "web")]),
            "batch 0 is not the batch List wrote",
        ),
        (
            item(target={"account": "111111111111", "region": None, "label": LABEL}),
            "is not one the settings name",
        ),
        (
            item(target={"account": None, "region": None, "label": "self/eu-west-1"}),
            "is not one the settings name",
        ),
        (item(repositories="app"), "malformed repositories"),
    ],
)
def test_a_forged_work_item_is_refused(forged: object, message: str) -> None:
    with pytest.raises(BatchError, match=re.escape(message)):
        check(forged)


def test_an_item_cant_turn_a_dry_run_deployment_live() -> None:
    with pytest.raises(BatchError, match="dryRun False, but the settings and the run say True"):
        check(item(), Settings(dry_run=True))


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"item": {}},
        {"item": {}, "run": {"runId": ""}},
        {"item": {}, "run": {"sha256": "x"}},
        [],
    ],
)
def test_a_child_input_without_its_run_is_refused(event: object) -> None:
    with pytest.raises(BatchError, match="child input"):
        child_run(event)


def test_targets_are_accounts_times_regions_and_roles_are_exact() -> None:
    settings = Settings.from_mapping(
        {"accounts": "111111111111,222222222222", "regions": '["us-east-1","eu-west-1"]'}
    )
    assert target_specs(settings) == [
        TargetSpec("111111111111", "us-east-1"),
        TargetSpec("111111111111", "eu-west-1"),
        TargetSpec("222222222222", "us-east-1"),
        TargetSpec("222222222222", "eu-west-1"),
    ]
    assert role_arns(settings, "aws-cn") == [
        "arn:aws-cn:iam::111111111111:role/EcrSweeperMember",
        "arn:aws-cn:iam::222222222222:role/EcrSweeperMember",
    ]
    assert target_specs(Settings()) == [TargetSpec(None, None)]


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"accounts": "12345"}, "accounts: got"),
        ({"accounts": ["*"]}, "accounts: got"),
        ({"regions": "us-east-1,us-east-1"}, "regions: got"),
        ({"crossAccountRoleName": ""}, "crossAccountRoleName: got"),
        ({"fanOutBatchSize": 0}, "fanOutBatchSize: got 0"),
    ],
)
def test_bad_target_settings_name_the_key(values: dict[str, object], problem: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_mapping(values)
    (message,) = raised.value.problems
    assert message.startswith(problem)
