"""The ECR user guide's lifecycle examples that use the archive tier, as table tests.

Each example builds a repository around the published policy (the policy text is the guide's,
verbatim) and asserts the exact action for every image. Further tests pin the archive semantics
the guide states: a rule sees only images of its storage class, archived images don't count
toward a standard keep-N, and images being restored (ACTIVATING) are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecr_sweeper.core.evaluate import evaluate_documents
from ecr_sweeper.core.lifecycle import archiving, evaluate, parse_policy, simple_policy
from ecr_sweeper.core.model import Action, Image, ImageStatus

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def ago(days: float | None) -> datetime | None:
    return None if days is None else NOW - timedelta(days=days)


def image(
    name: str,
    tags: list[str],
    pushed: float,
    *,
    pulled: float | None = None,
    status: ImageStatus = ImageStatus.ACTIVE,
    archived: float | None = None,
    activated: float | None = None,
) -> Image:
    return Image(
        digest=f"sha256:{name}",
        tags=tuple(tags),
        pushed_at=NOW - timedelta(days=pushed),
        last_pulled_at=ago(pulled),
        status=status,
        last_archived_at=ago(archived),
        last_activated_at=ago(activated),
    )


ARCHIVED = ImageStatus.ARCHIVED
ACTIVATING = ImageStatus.ACTIVATING
TRANSITION_TO_ARCHIVE = {"type": "transition", "targetStorageClass": "archive"}

ARCHIVE_NOT_PULLED_90 = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "Archive images not pulled in 90 days",
            "selection": {
                "tagStatus": "any",
                "countType": "sinceImagePulled",
                "countUnit": "days",
                "countNumber": 90,
            },
            "action": TRANSITION_TO_ARCHIVE,
        }
    ]
}
EXPIRE_ARCHIVED_365 = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "Expire images archived for more than 365 days",
            "selection": {
                "tagStatus": "any",
                "storageClass": "archive",
                "countType": "sinceImageTransitioned",
                "countUnit": "days",
                "countNumber": 365,
            },
            "action": {"type": "expire"},
        }
    ]
}
ARCHIVE_PROD_OLDER_30 = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "Archive production images older than 30 days",
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": ["prod*"],
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 30,
            },
            "action": TRANSITION_TO_ARCHIVE,
        }
    ]
}
ARCHIVE_30_EXPIRE_365 = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "Archive images older than 30 days",
            "selection": {
                "tagStatus": "any",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 30,
            },
            "action": TRANSITION_TO_ARCHIVE,
        },
        {
            "rulePriority": 2,
            "description": "Expire images archived for more than 365 days",
            "selection": {
                "tagStatus": "any",
                "storageClass": "archive",
                "countType": "sinceImageTransitioned",
                "countUnit": "days",
                "countNumber": 365,
            },
            "action": {"type": "expire"},
        },
    ]
}


@dataclass(frozen=True)
class Example:
    name: str
    policy: dict[str, Any]
    images: list[Image]
    actions: dict[str, Action]


KEEP, EXPIRE, TRANSITION = Action.KEEP, Action.EXPIRE, Action.TRANSITION

EXAMPLES = [
    Example(
        # "Filtering on last pulled time" and "Archiving images not pulled in a specified
        # number of days" publish the same policy.
        "archive images not pulled in 90 days",
        ARCHIVE_NOT_PULLED_90,
        [
            image("pulled-recently", ["v1"], 400, pulled=10),
            image("pulled-long-ago", ["v2"], 400, pulled=91),
            image("never-pulled-old", [], 91),
            image("never-pulled-young", [], 89),
            image("restored-recently", ["v3"], 400, pulled=200, activated=5),
            image("already-archived", ["v4"], 400, pulled=300, status=ARCHIVED, archived=100),
            image("being-restored", ["v5"], 400, pulled=300, status=ACTIVATING, archived=100),
        ],
        {
            "pulled-recently": KEEP,
            "pulled-long-ago": TRANSITION,
            "never-pulled-old": TRANSITION,
            "never-pulled-young": KEEP,
            "restored-recently": KEEP,
            "already-archived": KEEP,
            "being-restored": KEEP,
        },
    ),
    Example(
        "Filtering on archive transition time: expire archived for more than 365 days",
        EXPIRE_ARCHIVED_365,
        [
            image("archived-400", ["v1"], 800, status=ARCHIVED, archived=400),
            image("archived-364", ["v2"], 800, status=ARCHIVED, archived=364),
            image("archived-untagged", [], 800, status=ARCHIVED, archived=366),
            image("active-old", ["v3"], 800),
            image("activating", ["v4"], 800, status=ACTIVATING, archived=500),
            image("archived-when-unknown", ["v5"], 800, status=ARCHIVED),
        ],
        {
            "archived-400": EXPIRE,
            "archived-364": KEEP,
            "archived-untagged": EXPIRE,
            "active-old": KEEP,
            "activating": KEEP,
            "archived-when-unknown": KEEP,
        },
    ),
    Example(
        "Archiving images older than a specified number of days (prod*)",
        ARCHIVE_PROD_OLDER_30,
        [
            image("prod-old", ["prod-1"], 31),
            image("prod-young", ["prod-2"], 29),
            image("dev-old", ["dev-1"], 90),
            image("untagged-old", [], 90),
            image("prod-archived", ["prod-0"], 120, status=ARCHIVED, archived=60),
        ],
        {
            "prod-old": TRANSITION,
            "prod-young": KEEP,
            "dev-old": KEEP,
            "untagged-old": KEEP,
            "prod-archived": KEEP,
        },
    ),
    Example(
        "Combining archive and expire rules",
        ARCHIVE_30_EXPIRE_365,
        [
            image("fresh", ["v9"], 2),
            image("old-active", ["v8"], 31),
            image("old-untagged", [], 45),
            image("archived-long", ["v1"], 900, status=ARCHIVED, archived=366),
            image("archived-short", ["v2"], 900, status=ARCHIVED, archived=100),
            image("activating", ["v3"], 900, status=ACTIVATING, archived=400),
        ],
        {
            "fresh": KEEP,
            "old-active": TRANSITION,
            "old-untagged": TRANSITION,
            "archived-long": EXPIRE,
            "archived-short": KEEP,
            "activating": KEEP,
        },
    ),
]


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.name for example in EXAMPLES])
def test_published_archive_examples(example: Example) -> None:
    verdicts = evaluate(parse_policy(example.policy), example.images, NOW)
    actions = {digest.removeprefix("sha256:"): v.action for digest, v in verdicts.items()}
    assert actions == example.actions
    for verdict in verdicts.values():
        assert verdict.reason.startswith(
            {KEEP: "kept: ", EXPIRE: "expire: ", TRANSITION: "transition to archive: "}[
                verdict.action
            ]
        )
        assert (verdict.acted_by is None) is (verdict.action is KEEP)


def test_archived_images_dont_count_toward_a_standard_keep_n() -> None:
    """12 active and 5 archived tagged images: keep-10 expires the 2 oldest active ones only."""
    images = [image(f"active-{n:02}", [f"a{n}"], n + 1) for n in range(12)] + [
        image(f"archived-{n}", [f"z{n}"], 0.5, status=ARCHIVED, archived=1) for n in range(5)
    ]
    verdicts = evaluate(simple_policy(10, 1), images, NOW)
    expired = {d.removeprefix("sha256:") for d, v in verdicts.items() if v.action is EXPIRE}
    assert expired == {"active-10", "active-11"}
    archived = [v for d, v in verdicts.items() if "archived" in d]
    assert all(v.action is KEEP for v in archived)
    assert {v.reason for v in archived} == {"kept: archived, and no archive rule selects it"}


def test_archiving_compiles_expire_into_transition_and_adds_retention() -> None:
    policy = archiving(simple_policy(10, 1), 180)
    assert [(r.priority, r.action, r.selection.storage_class) for r in policy.rules] == [
        (1, "transition", "standard"),
        (2, "transition", "standard"),
        (3, "expire", "archive"),
    ]
    images = [image(f"active-{n:02}", [f"a{n}"], n + 1) for n in range(12)] + [
        image("archived-old", ["z1"], 400, status=ARCHIVED, archived=181),
        image("archived-young", ["z2"], 400, status=ARCHIVED, archived=179),
        image("untagged", [], 3),
    ]
    actions = {
        d.removeprefix("sha256:"): v.action for d, v in evaluate(policy, images, NOW).items()
    }
    assert {name for name, action in actions.items() if action is TRANSITION} == {
        "active-10",
        "active-11",
        "untagged",
    }
    assert {name for name, action in actions.items() if action is EXPIRE} == {"archived-old"}


def test_archiving_leaves_archive_rules_alone_and_without_retention_adds_none() -> None:
    policy = archiving(parse_policy(ARCHIVE_30_EXPIRE_365), None)
    assert [(r.action, r.selection.storage_class) for r in policy.rules] == [
        ("transition", "standard"),
        ("expire", "archive"),
    ]


def test_a_transition_rule_still_shields_lower_rules_like_an_expire_rule() -> None:
    """ECR's evaluation rule 3 holds across actions: the first rule whose selection matches an
    image is the only one that may act on it."""
    policy = parse_policy(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "selection": {
                        "tagStatus": "tagged",
                        "tagPatternList": ["prod*"],
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": 30,
                    },
                    "action": TRANSITION_TO_ARCHIVE,
                },
                {
                    "rulePriority": 2,
                    "selection": {
                        "tagStatus": "any",
                        "countType": "imageCountMoreThan",
                        "countNumber": 1,
                    },
                    "action": {"type": "expire"},
                },
            ]
        }
    )
    images = [image("dev", ["dev"], 1), image("prod-young", ["prod-2"], 10)]
    verdicts = evaluate(policy, images, NOW)
    young = verdicts["sha256:prod-young"]
    assert young.action is KEEP
    assert "which does not transition it" in young.reason
    assert "rule 2 alone would expire it" in young.reason


def test_evaluate_reports_transition_decisions() -> None:
    images = {
        "imageDetails": [
            {"imageDigest": "sha256:old", "imageTags": ["prod-1"], "imagePushedAt": 0},
            {
                "imageDigest": "sha256:gone",
                "imageTags": ["prod-0"],
                "imagePushedAt": "2020-01-01T00:00:00Z",
                "imageStatus": "ARCHIVED",
                "lastArchivedAt": "2025-01-01T00:00:00Z",
            },
        ]
    }
    report = evaluate_documents(ARCHIVE_30_EXPIRE_365, images, NOW)
    assert report["expired"] == ["sha256:gone"]
    assert report["transitioned"] == ["sha256:old"]
    by_digest = {d["imageDigest"]: d for d in report["decisions"]}
    assert by_digest["sha256:old"]["action"] == "transition"
    assert by_digest["sha256:old"]["rulePriority"] == 1
    assert by_digest["sha256:old"]["imageStatus"] == "ACTIVE"
    assert by_digest["sha256:gone"]["action"] == "expire"
    assert by_digest["sha256:gone"]["rulePriority"] == 2
    assert by_digest["sha256:gone"]["imageStatus"] == "ARCHIVED"
