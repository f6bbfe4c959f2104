"""The deletion guard in the template: its alarm goes to the alarm topic and reads live runs, the
dashboard graphs it, and the stack grants the function nothing new for it (approve's `--now`
is the caller's own permission)."""

from __future__ import annotations

import json
from typing import Any

from helpers.infra import Synthesized

from ecr_sweeper.aws import permissions
from ecr_sweeper.core import metrics_catalog as names


def _function_statements(app: Synthesized) -> list[dict[str, Any]]:
    """Every policy statement of a role Lambda assumes (the functions' roles)."""
    roles = {
        logical
        for logical, role in app.resources("AWS::IAM::Role").items()
        if "lambda.amazonaws.com"
        in json.dumps(role["Properties"]["AssumeRolePolicyDocument"]["Statement"])
    }
    return [
        statement
        for policy in app.resources("AWS::IAM::Policy").values()
        if any(ref.get("Ref") in roles for ref in policy["Properties"]["Roles"])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    listed = statement["Action"]
    return [listed] if isinstance(listed, str) else list(listed)


def test_a_held_run_alarms_on_the_topic_with_what_to_do(default_app: Synthesized) -> None:
    topic_id, _ = default_app.only("AWS::SNS::Topic")
    (alarm,) = [
        a["Properties"]
        for k, a in default_app.resources("AWS::CloudWatch::Alarm").items()
        if "GuardHeld" in k
    ]
    (query,) = alarm["Metrics"]
    stat = query["MetricStat"]
    assert (stat["Metric"]["MetricName"], stat["Stat"], stat["Period"]) == (
        names.GUARD_HELD,
        "Sum",
        3600,
    )
    dimensions = {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]}
    assert dimensions[names.MODE_DIMENSION] == names.MODE_LIVE
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]
    assert "ecr-sweeper approve RUN_ID" in alarm["AlarmDescription"]
    assert "first night after deploy" in alarm["AlarmDescription"]


def test_the_dashboard_graphs_held_runs(default_app: Synthesized) -> None:
    (dashboard,) = default_app.resources("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    text = body if isinstance(body, str) else json.dumps(body)
    assert "Deletion guard: live runs held per night" in text
    assert f'\\"{names.GUARD_HELD}\\"' in text or f'"{names.GUARD_HELD}"' in text


def test_the_guard_grants_no_function_anything_new(
    default_app: Synthesized, fan_out_app: Synthesized
) -> None:
    """The approval lives in the cursor's parameter, which the single function could already
    read and write (the fan-out's Check gets the same two actions on it, and nothing else of
    SSM); starting a run (`approve --now`) is the caller's permission, never a function's."""
    for app in (default_app, fan_out_app):
        statements = _function_statements(app)
        assert statements, "the functions' roles have policies"
        actions = {action for statement in statements for action in _actions(statement)}
        assert not actions & {"lambda:InvokeFunction", "states:StartExecution"}
        ssm = [s for s in statements if any(a.startswith("ssm:") for a in _actions(s))]
        expected = [("RunCursor", sorted(permissions.SSM_CURSOR_ACTIONS))]
        if app is fan_out_app:  # Check reads the approval and records its use
            expected.append(("ApprovalInStateParameter", sorted(permissions.SSM_CURSOR_ACTIONS)))
        assert [(s["Sid"], sorted(_actions(s))) for s in ssm] == expected
        (parameter_id,) = app.resources("AWS::SSM::Parameter")
        assert all(parameter_id in json.dumps(s["Resource"]) for s in ssm)
