"""`--output json`: the run summary streamed one repository at a time is one valid JSON document
with exactly the content of the summary's dict."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

from ecr_sweeper.core import overrides, planner
from ecr_sweeper.core.model import Image
from ecr_sweeper.core.results import DeleteFailure, RepositoryResult, RunSummary
from ecr_sweeper.core.settings import Settings
from ecr_sweeper_cli import main as cli

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _result(name: str, count: int) -> RepositoryResult:
    images = [
        Image(
            digest=f"sha256:{number:064x}",
            tags=(f"v{number}", 'q"uote\\back\nnewline-é-☃') if number % 2 else (),
            pushed_at=NOW - timedelta(days=number * 10),
            size_bytes=1000 + number,
        )
        for number in range(count)
    ]
    plan = planner.plan_repository(
        name, images, overrides.repository_rules(Settings(), {}), now=NOW
    )
    return RepositoryResult(
        repository=name,
        images_scanned=count,
        images_expired=len(plan.expired),
        plan=plan,
        delete_failures=[DeleteFailure({"imageTag": "x\ty"}, "Code", "why \u2028 not")],
    )


def _written(summary: RunSummary) -> str:
    stream = io.StringIO()
    cli.write_json(summary, stream)
    return stream.getvalue()


def test_the_streamed_document_is_the_summary_dict_with_every_decision() -> None:
    summary = RunSummary(
        run_id="run-1",
        dry_run=True,
        started_at=NOW,
        finished_at=NOW + timedelta(seconds=3),
        results=[
            _result('team/a"pp\\1', 30),
            _result("plain", 3),
            _result("we\u0301ird/\u00fcnicode\n", 12),
        ],
    )
    text = _written(summary)
    assert text.endswith("}\n") and text.count("\n") == len(summary.results) + 2
    document = json.loads(text)
    assert document == json.loads(json.dumps(summary.to_dict(include_decisions=True)))
    assert list(document) == list(summary.to_dict())
    assert [r["repository"] for r in document["perRepository"]] == [
        'team/a"pp\\1',
        "plain",
        "we\u0301ird/\u00fcnicode\n",
    ]
    assert any(r.get("decisions") for r in document["perRepository"])


def test_a_run_without_repositories_is_valid_json_too() -> None:
    summary = RunSummary(run_id="empty", dry_run=False, started_at=NOW)
    document = json.loads(_written(summary))
    assert document == json.loads(json.dumps(summary.to_dict(include_decisions=True)))
    assert document["perRepository"] == []
