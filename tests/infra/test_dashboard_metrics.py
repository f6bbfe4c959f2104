"""The dashboard and alarms read exactly the metrics the handler emits, and the widgets answer
the questions they claim to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers.infra import Synthesized, dashboard_body

from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core import metrics_catalog as names
from ecr_sweeper.core.settings import StackSettings as Settings
from infra import synthesized_template
from infra.monitoring import latest_deletions_query, top_repositories_query
from infra.template_metrics import custom_metric_names, metric_references


def _widgets(app: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        w["properties"]["title"]: w
        for w in dashboard_body(app)["widgets"]
        if "title" in w["properties"]
    }


def _metric_rows(widget: dict[str, Any]) -> list[list[Any]]:
    return [row for row in widget["properties"].get("metrics", []) if isinstance(row[0], str)]


def _expressions(widget: dict[str, Any]) -> list[str]:
    return [
        row[0]["expression"]
        for row in widget["properties"].get("metrics", [])
        if isinstance(row[0], dict) and "expression" in row[0]
    ]


def test_synthesized_template_helper_serves_the_consistency_check() -> None:
    """The one-call form other tests use: cdk.json's settings, default namespace."""
    template = synthesized_template()
    assert custom_metric_names(template, Settings().metrics_namespace) == set(names.ALL_METRICS)


@pytest.mark.parametrize("fixture", ["default_app", "custom_app"])
def test_template_reads_exactly_the_cataloged_metrics(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    app: Synthesized = request.getfixturevalue(fixture)
    read = custom_metric_names(app.template, app.settings.metrics_namespace)
    assert read == set(names.ALL_METRICS)


def test_every_custom_metric_is_read_with_the_handlers_dimensions(
    custom_app: Synthesized,
) -> None:
    references = [
        ref
        for ref in metric_references(custom_app.template)
        if ref.namespace == custom_app.settings.metrics_namespace
    ]
    assert references
    modes = {names.MODE_LIVE, names.MODE_DRY_RUN}
    for ref in references:
        dimensions = ref.dimension_map
        assert set(dimensions) == {"service", names.MODE_DIMENSION}, ref
        assert dimensions["service"] == names.SERVICE, ref
        assert dimensions[names.MODE_DIMENSION] in modes, ref
    dry = {ref.name for ref in references if ref.dimension_map[names.MODE_DIMENSION] != "Live"}
    assert dry == {names.IMAGES_EXPIRED, names.BYTES_EXPIRED}
    other_namespaces = {
        ref.namespace
        for ref in metric_references(custom_app.template)
        if ref.namespace != custom_app.settings.metrics_namespace
    }
    assert other_namespaces == {"AWS/Lambda", "AWS/SQS"}


def test_alarms_never_read_dry_runs(default_app: Synthesized) -> None:
    alarm_refs = [ref for ref in metric_references(default_app.template) if ref.source == "alarm"]
    custom = [ref for ref in alarm_refs if ref.namespace == default_app.settings.metrics_namespace]
    assert {ref.name for ref in custom} == {
        names.DELETE_FAILURES,
        names.FAILED_REPOSITORIES,
        names.UNFINISHED_REPOSITORIES,
        names.RUN_COMPLETED,
        names.GUARD_HELD,
        names.CURSOR_FAILURES,
    }
    assert all(ref.dimension_map[names.MODE_DIMENSION] == names.MODE_LIVE for ref in custom)


def test_nightly_panels(default_app: Synthesized) -> None:
    widgets = _widgets(default_app)
    deleted = widgets["Images deleted per night"]
    rows = _metric_rows(deleted)
    assert [row[1] for row in rows] == [names.IMAGES_DELETED, names.IMAGES_ARCHIVED]
    assert all(row[-1]["period"] == 86_400 and row[-1]["stat"] == "Sum" for row in rows)
    assert _expressions(widgets["GB reclaimed per night"]) == [
        "bytes / 1000000000",
        "archived / 1000000000",
    ]
    reclaimed, archived = _metric_rows(widgets["GB reclaimed per night"])
    assert (reclaimed[1], reclaimed[-1]["id"]) == (names.BYTES_RECLAIMED, "bytes")
    assert (archived[1], archived[-1]["id"]) == (names.BYTES_ARCHIVED, "archived")


@pytest.mark.parametrize(("fixture", "price"), [("default_app", "0.1"), ("custom_app", "0.12")])
def test_saving_panels_use_and_show_the_configured_price(
    fixture: str, price: str, request: pytest.FixtureRequest
) -> None:
    app: Synthesized = request.getfixturevalue(fixture)
    saving = [w for title, w in _widgets(app).items() if "saving" in title.lower()]
    assert len(saving) == 2
    for widget in saving:
        assert f"{price} USD" in widget["properties"]["title"]
        assert _expressions(widget) == [f"bytes / 1000000000 * {price}"]


def test_duration_panel_shows_the_timeout(custom_app: Synthesized) -> None:
    widget = _widgets(custom_app)["Run duration against the 600 s timeout"]
    [row] = _metric_rows(widget)
    assert row[1] == names.RUN_DURATION_SECONDS
    annotations = widget["properties"]["annotations"]["horizontal"]
    assert {a["value"] for a in annotations} == {600, 480}


def test_function_health_panel(default_app: Synthesized) -> None:
    rows = _metric_rows(_widgets(default_app)["Function errors and throttles"])
    assert {(row[0], row[1]) for row in rows} == {
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
    }


def test_protection_panel_has_one_line_per_protection(default_app: Synthesized) -> None:
    [widget] = [w for title, w in _widgets(default_app).items() if "protection" in title]
    assert widget["properties"]["stacked"] is True
    assert [row[1] for row in _metric_rows(widget)] == list(names.KEPT_BY_PROTECTION.values())


def test_dry_runs_are_shown_apart(default_app: Synthesized) -> None:
    [widget] = [w for title, w in _widgets(default_app).items() if "DryRun" in title]
    rows = _metric_rows(widget)
    assert {row[1] for row in rows} == {names.IMAGES_EXPIRED, names.BYTES_EXPIRED}
    assert all(names.MODE_DRY_RUN in row for row in rows)


def test_alarm_status_panel_lists_every_alarm(default_app: Synthesized) -> None:
    widget = _widgets(default_app)["Alarms"]
    alarms = default_app.resources("AWS::CloudWatch::Alarm")
    assert len(widget["properties"]["alarms"]) == len(alarms) == 9


def test_log_queries_read_the_functions_log_group_and_its_records(
    default_app: Synthesized,
) -> None:
    group_id = default_app.only("AWS::Logs::LogGroup")[0]
    queries = {
        title: w["properties"]["query"]
        for title, w in _widgets(default_app).items()
        if w["type"] == "log"
    }
    assert set(queries) == {
        "Top repositories by reclaimed bytes",
        "Errors and warnings",
        "Latest deletions and why",
    }
    for query in queries.values():
        assert query.startswith(f"SOURCE '<Ref:{group_id}>' | ")
    top = queries["Top repositories by reclaimed bytes"]
    assert f'filter {ev.EVENT} = "{ev.REPOSITORY_SUMMARY}"' in top
    assert "sum(gb) as gbReclaimed" in top and f"by {ev.REPOSITORY}" in top
    latest = queries["Latest deletions and why"]
    assert f'filter {ev.EVENT} = "{ev.IMAGE_DELETED}"' in latest
    for field in (ev.REPOSITORY, ev.IMAGE_DIGEST, ev.IMAGE_TAGS, ev.REASON, ev.RULE_PRIORITY):
        assert field in latest
    errors = queries["Errors and warnings"]
    assert '"ERROR"' in errors and '"WARNING"' in errors and "level in" in errors


def test_layout_has_no_overlapping_widgets(default_app: Synthesized) -> None:
    taken: set[tuple[int, int]] = set()
    for widget in dashboard_body(default_app)["widgets"]:
        assert widget["x"] + widget["width"] <= 24
        cells = {
            (widget["x"] + dx, widget["y"] + dy)
            for dx in range(widget["width"])
            for dy in range(widget["height"])
        }
        assert not cells & taken, widget["properties"].get("title")
        taken |= cells


def test_docs_describe_every_panel_and_alarm(default_app: Synthesized, project_root: Path) -> None:
    doc = (project_root / "docs" / "dashboard.md").read_text(encoding="utf-8")
    timeout = str(default_app.settings.function_timeout_seconds)
    for title in _widgets(default_app):
        described = title.split(" (")[0].replace(f" {timeout} s ", " T s ")
        assert described in doc, f"docs/dashboard.md doesn't describe the panel {title!r}"
    for logical_id in default_app.resources("AWS::CloudWatch::Alarm"):
        assert logical_id.removeprefix("Monitoring")[:-8] in doc
    # The documented queries filter on the same records as the dashboard's log panels.
    for query in (top_repositories_query(), latest_deletions_query()):
        assert query[1] in doc, query[1]
    assert f"{ev.IMAGE_TAGS}.0" in doc


def test_stack_outputs_name_what_operators_look_for(default_app: Synthesized) -> None:
    assert set(default_app.template["Outputs"]) == {
        "FunctionName",
        "LogGroupName",
        "DashboardName",
        "AlarmTopicArn",
        "SweeperRoleArn",
        "FailedSweepsQueueUrl",
        "StateParameterName",
    }
