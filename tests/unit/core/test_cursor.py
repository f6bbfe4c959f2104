"""The multi-target cursor stays small at any number of targets, and what is read back is
untrusted: anything but a cursor for this list of targets is ignored with a reason."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ecr_sweeper.core.cursor import (
    CURSOR_MAX_CHARS,
    REPOSITORY_NAME_MAX,
    TargetPosition,
    decode,
    encode,
    targets_digest,
)

labels_strategy = st.lists(st.text(min_size=1, max_size=300), min_size=1, max_size=2000)


@given(labels_strategy, st.data(), st.text(max_size=1000) | st.none())
def test_the_stored_cursor_stays_below_its_bound_and_reads_back(
    labels: list[str], data: st.DataObject, repository: str | None
) -> None:
    index = data.draw(st.integers(0, len(labels) - 1))
    stored = {"resumeAt": encode(TargetPosition(index, repository), labels)}
    assert len(json.dumps(stored)) <= CURSOR_MAX_CHARS < 4096
    position, why = decode(stored["resumeAt"], labels)
    assert why is None and position is not None and position.index == index


def test_the_longest_repository_name_is_kept() -> None:
    name = "a" * REPOSITORY_NAME_MAX
    labels = [f"{100000000000 + n}/ap-southeast-2" for n in range(10_000)]
    stored = {"resumeAt": encode(TargetPosition(9_999, name), labels)}
    assert len(json.dumps(stored)) <= CURSOR_MAX_CHARS
    assert decode(stored["resumeAt"], labels) == (TargetPosition(9_999, name), None)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    )
)
def test_any_json_value_is_read_without_raising(value: Any) -> None:
    position, why = decode(value, ["self/us-east-1", "self/eu-west-1"])
    assert (position is None) != (why is None)


def test_a_cursor_for_another_list_or_out_of_range_is_ignored_with_the_reason() -> None:
    labels = ["a/us-east-1", "b/us-east-1"]
    digest = targets_digest(labels)
    cases = {
        "another list of targets": {"targets": targets_digest(["a/us-east-1"]), "target": 0},
        "is not one of the 2 targets": {"targets": digest, "target": 2},
        "expected a whole number": {"targets": digest, "target": True},
        "not an ECR repository name": {"targets": digest, "target": 0, "repository": "A B"},
        "unknown key": {"targets": digest, "target": 0, "extra": 1},
        "expected a JSON object": ["a/us-east-1"],
    }
    for reason, value in cases.items():
        position, why = decode(value, labels)
        assert position is None and why is not None and reason in why, (value, why)
