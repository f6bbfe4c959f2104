"""The CLI's pure parts: the summary's columns, --repository narrowing, the policy in words,
durations, the settings command, and the progress handler under concurrent records."""

from __future__ import annotations

import argparse
import io
import json
import logging
import threading
from datetime import timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.progress import Progress

from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.planner import select_repository
from ecr_sweeper.core.settings import StackSettings as Settings
from ecr_sweeper_cli import main as cli
from ecr_sweeper_cli.config import ConfigError, narrow_repositories
from ecr_sweeper_cli.describe import policy_in_words
from ecr_sweeper_cli.progress import ProgressHandler, progress_display
from ecr_sweeper_cli.render import kept_by_reason, monthly_saving, render_run
from ecr_sweeper_cli.runs_cmd import duration, newest_first


def _repository(name: str, **fields: Any) -> dict[str, Any]:
    base = {
        "repository": name, "status": "swept", "imagesScanned": 0, "imagesExpired": 0,
        "imagesDeleted": 0, "imagesKept": 0, "bytesExpired": 0, "bytesReclaimed": 0,
        "deleteFailures": [], "keptByProtection": {}, "notes": [],
    }  # fmt: skip
    base.update(fields)
    return base


def test_kept_images_are_split_by_reason_and_add_up() -> None:
    repository = _repository(
        "web",
        imagesKept=20,
        keptByProtection={
            "in-use": 2, "index-child": 3, "referrer": 1, "protected-tag": 4, "too-young": 1,
            "changed-during-run": 1, "uncertain": 2,
        },
    )  # fmt: skip
    split = kept_by_reason(repository)
    assert split == {
        "policy": 6, "in use": 2, "index child": 3, "referrer": 1, "protected tag": 4,
        "too young": 1, "other": 3,
    }  # fmt: skip
    assert sum(split.values()) == 20


def _rendered(data: dict[str, Any], price: float = 0.10, width: int = 200) -> tuple[str, str]:
    """What the summary prints on stdout and on stderr."""
    console = Console(file=io.StringIO(), width=width, color_system=None)
    errors = Console(file=io.StringIO(), width=width, color_system=None)
    render_run(console, data, price_per_gb_month=price, errors=errors)
    return console.file.getvalue(), errors.file.getvalue()  # type: ignore[attr-defined]


def test_the_summary_sorts_by_size_folds_idle_repositories_and_shows_failures() -> None:
    data = {
        "dryRun": True, "repositories": 5, "imagesScanned": 40, "imagesExpired": 7,
        "imagesKept": 33, "bytesExpired": 3_000_000_000, "failures": 1,
        "perRepository": [
            _repository("small", imagesScanned=5, imagesExpired=2, bytesExpired=1_000_000_000),
            _repository("big", imagesScanned=5, imagesExpired=5, bytesExpired=2_000_000_000),
            _repository("quiet-1", imagesScanned=10, imagesKept=10),
            _repository("quiet-2", imagesScanned=10, imagesKept=10),
            _repository(
                "broken", status="failed", reason="AccessDenied: no", errorCode="AccessDenied"
            ),
        ],
    }  # fmt: skip
    text, errors = _rendered(data, price=0.5)
    rows = [line.split()[0] for line in text.splitlines() if "│" in line]
    assert rows == ["big", "small", "broken"]
    assert "failed: AccessDenied" in text
    assert errors == "ecr-sweeper: broken: failed: AccessDenied: no\n", "the whole reason, once"
    assert "2 repositories with nothing to do (20 images, all kept): quiet-1, quiet-2" in text
    assert "Estimated saving: $1.50 per month (at $0.50 per GB-month)" in text
    assert monthly_saving(3_000_000_000, 0.5) == pytest.approx(1.5)


SELECTED = ["web-a", "web-b", "web-secret", "api", "app-web", "a", "webby"]


@pytest.mark.parametrize(
    ("include", "exclude", "patterns"),
    [
        (("*",), (), ("web-*",)),
        (("*",), ("web-secret",), ("web-*", "api")),
        (("web-*",), (), ("*",)),
        (("web-*",), (), ("web-a", "api")),
        (("web-*", "api"), ("web-b",), ("web-?", "a*")),
        (("app-*",), (), ("web-*",)),
        (("web-a", "api"), (), ("w*",)),
    ],
)
def test_repository_narrowing_selects_exactly_the_intersection(
    include: tuple[str, ...], exclude: tuple[str, ...], patterns: tuple[str, ...]
) -> None:
    settings = Settings(include_repositories=include, exclude_repositories=exclude)
    narrowed = narrow_repositories(settings, patterns)
    assert narrowed.exclude_repositories == exclude
    for name in SELECTED:
        wanted = select_repository(name, settings) and any(fnmatchcase(name, p) for p in patterns)
        assert select_repository(name, narrowed) == wanted, name


def test_repository_narrowing_refuses_what_it_cannot_write_as_patterns() -> None:
    with pytest.raises(ConfigError, match="--repository '\\*-a': can't be combined"):
        narrow_repositories(Settings(include_repositories=("web-*",)), ["*-a"])
    with pytest.raises(
        ConfigError, match="--repository 'UPPER': expected a repository name or pattern"
    ):
        narrow_repositories(Settings(), ["UPPER"])
    assert narrow_repositories(Settings(), []) == Settings()


def test_the_simple_settings_in_words() -> None:
    lines = policy_in_words(Settings(untagged_grace_days=1, protected_tags=()))
    text = "\n".join(lines)
    assert "keepTaggedImages=10 and untaggedGraceDays=1" in lines[0]
    assert "rule 1: delete untagged images pushed more than 1 day ago" in text
    assert "rule 2: keep the newest 10 tagged images, delete older ones" in text
    assert "images tagged" not in text and "1 days" not in text
    assert "repositories:" not in text
    scoped = "\n".join(
        policy_in_words(
            Settings(minimum_age_days=3, include_repositories=("a*",), exclude_repositories=("ab",))
        )
    )
    assert "images tagged 'latest'" in scoped and "younger than 3 days" in scoped
    assert "repositories: 'a*', except 'ab'" in scoped


def test_a_lifecycle_policy_is_described_as_itself() -> None:
    policy = {
        "rules": [
            {
                "rulePriority": 3,
                "selection": {
                    "tagStatus": "tagged", "tagPatternList": ["release-*"],
                    "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 30,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 9,
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                              "countNumber": 1},
                "action": {"type": "expire"},
            },
        ]
    }  # fmt: skip
    lines = policy_in_words(Settings.from_mapping({"lifecyclePolicy": policy}))
    assert "lifecyclePolicy setting" in lines[0]
    assert lines[1].strip() == (
        "rule 3: delete images with tags matching 'release-*' not pulled for more than 30 days "
        "(never pulled: pushed more than that ago)"
    )
    assert lines[2].strip() == "rule 9: keep the newest 1 images (tagged or not), delete older ones"


@pytest.mark.parametrize(
    ("text", "span"),
    [("30m", timedelta(minutes=30)), ("12h", timedelta(hours=12)), ("7d", timedelta(days=7))],
)
def test_durations(text: str, span: timedelta) -> None:
    assert duration(text) == span


@pytest.mark.parametrize("text", ["", "7", "d", "0h", "1.5d", "7 days", "100000w"])
def test_bad_durations_name_what_is_accepted(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=repr(text)):
        duration(text)


def test_runs_are_listed_newest_first() -> None:
    runs = [
        {"runId": "b", "startedAt": "2026-11-29T03:00:00+00:00"},
        {"runId": "c", "startedAt": "2026-11-30T03:00:00+00:00"},
        {"runId": "a", "startedAt": "2026-11-28T03:00:00+00:00"},
    ]
    assert [r["runId"] for r in newest_first(runs)] == ["c", "b", "a"]


def test_the_cli_default_stack_name_is_the_stacks() -> None:
    from ecr_sweeper_cli.runs_cmd import DEFAULT_STACK_NAME
    from infra.stack import STACK_ID

    assert DEFAULT_STACK_NAME == STACK_ID


def _config(tmp_path: Path, context: dict[str, Any]) -> Path:
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps({"context": context}))
    return path


def test_settings_shows_each_value_with_its_source_and_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(
        tmp_path,
        {"keepTaggedImages": 20, "dryRun": False, "@aws-cdk/core:stackRelativeExports": True},
    )
    code = cli.main(["settings", "--config", str(config), "-c", "dryRun=true", "--output", "json"])
    assert code == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["keepTaggedImages"] == {"value": 20, "source": "cdk.json", "default": 10}
    assert shown["dryRun"] == {"value": True, "source": "-c", "default": False}
    assert shown["untaggedGraceDays"] == {"value": 1, "source": "default", "default": 1}
    assert set(shown) == set(json.loads(Settings().to_json()))

    assert cli.main(["settings", "--config", str(config)]) == 0
    table = capsys.readouterr().out
    assert "keepTaggedImages" in table and "cdk.json" in table and "default" in table


def test_settings_reports_the_policy_file_and_refuses_bad_values_like_synth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan",
                              "countNumber": 1},
                "action": {"type": "expire"},
            }
        ]
    }  # fmt: skip
    (tmp_path / "policy.json").write_text(json.dumps(policy))
    config = _config(tmp_path, {"lifecyclePolicyFile": "policy.json"})
    assert cli.main(["settings", "--config", str(config), "--output", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)["lifecyclePolicy"]
    assert shown["source"] == "cdk.json lifecyclePolicyFile" and shown["file"] == "policy.json"
    assert shown["value"]["rules"][0]["rulePriority"] == 1

    bad = _config(tmp_path, {"keepTaggedImages": 0, "untaggedGraceDay": 3})
    assert cli.main(["settings", "--config", str(bad)]) == 2
    error = capsys.readouterr().err
    assert f"keepTaggedImages ({bad}): got 0; expected a whole number from 1 to 10000" in error
    assert "untaggedGraceDay" in error and "(did you mean 'untaggedGraceDays'?)" in error


def _record(event: str, **fields: Any) -> logging.LogRecord:
    record = logging.LogRecord("ecr_sweeper.run", logging.INFO, __file__, 1, "m", None, None)
    record.__dict__.update({ev.EVENT: event, **fields})
    return record


def test_the_progress_handler_counts_records_from_many_threads() -> None:
    progress = Progress(console=Console(file=io.StringIO()), auto_refresh=False)
    handler = ProgressHandler(progress, dry_run=False)
    handler.handle(_record("run.started", repositoriesSelected=400))

    def worker() -> None:
        for _ in range(50):
            handler.handle(_record(ev.IMAGE_DELETED))
            handler.handle(_record(ev.REPOSITORY_SUMMARY, imagesScanned=3, imagesExpired=1))
            handler.handle(_record(ev.IMAGE_PROTECTED))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (handler.repositories_done, handler.repositories_total) == (400, 400)
    assert (handler.images_seen, handler.deleted) == (1200, 400)
    (task,) = progress.tasks
    assert (task.completed, task.total) == (400, 400)
    assert task.fields["stats"] == "1200 images seen, 400 deleted"


def test_no_progress_when_stderr_is_not_a_terminal() -> None:
    quiet = Console(file=io.StringIO(), force_terminal=False)
    logger = logging.getLogger("ecr_sweeper.run")
    before = list(logger.handlers)
    with progress_display("ecr_sweeper.run", dry_run=True, console=quiet) as handler:
        assert handler is None and logger.handlers == before
    assert quiet.file.getvalue() == ""  # type: ignore[attr-defined]


def test_settings_schema_is_json_schema_of_every_setting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["settings", "--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    properties = schema["properties"]
    assert set(properties) == set(json.loads(Settings().to_json()))
    assert properties["keepTaggedImages"]["default"] == 10
    assert (
        properties["keepTaggedImages"]["minimum"],
        properties["keepTaggedImages"]["maximum"],
    ) == (1, 10000)
    assert properties["logLevel"]["enum"] == ["DEBUG", "INFO", "WARNING", "ERROR"]
    assert all(entry.get("description") for entry in properties.values())


def _constraint_keywords(schema: Any) -> set[str]:
    """pydantic's own names for bounds wherever they stand in a schema (JSON Schema has none)."""
    if isinstance(schema, dict):
        found = {key for key in schema if key in ("ge", "le", "gt", "lt")}
        return found.union(*(_constraint_keywords(value) for value in schema.values()))
    if isinstance(schema, list):
        return set().union(*(_constraint_keywords(value) for value in schema))
    return set()


def test_settings_schema_states_bounds_in_json_schema_keywords(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Bounds as minimum/maximum/exclusiveMinimum, which editors and validators understand,
    for optional and float settings too."""
    assert cli.main(["settings", "--schema"]) == 0
    properties = json.loads(capsys.readouterr().out)["properties"]
    assert not _constraint_keywords(properties)
    retention = next(b for b in properties["archiveRetentionDays"]["anyOf"] if "minimum" in b)
    assert (retention["minimum"], retention["maximum"]) == (90, 36500)
    price = properties["storagePricePerGbMonth"]
    assert (price["exclusiveMinimum"], price["maximum"]) == (0, 100)
