"""The fan-out's template (settings fanOut): the Distributed Map, its roles, its bucket, the
schedule that starts it; and without fanOut, the stack as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cfnlint.api
import pytest
from helpers.infra import Synthesized, actions_of, statements, synthesize

from ecr_sweeper.core.settings import SettingsError
from infra import build_app
from infra.config import cdk_json_context
from infra.fan_out import HANDLERS, LAMBDA_RETRY_ERRORS, RUN_DOCUMENTS_DAYS

FAN_OUT_TYPES = {"AWS::StepFunctions::StateMachine", "AWS::S3::Bucket", "AWS::S3::BucketPolicy"}


def render(value: Any) -> str:
    """A CloudFormation string with its tokens as '<Logical.Arn>' / '<Ref:X>' placeholders."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(render(part) for part in parts)
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    return f"<Ref:{value['Ref']}>"


def definition(app: Synthesized) -> dict[str, Any]:
    _, machine = app.only("AWS::StepFunctions::StateMachine")
    return json.loads(render(machine["Properties"]["DefinitionString"]))  # type: ignore[no-any-return]


def fan_out_functions(app: Synthesized) -> dict[str, str]:
    """Logical id -> handler of the five fan-out functions."""
    return {
        logical: resource["Properties"]["Handler"]
        for logical, resource in app.resources("AWS::Lambda::Function").items()
        if resource["Properties"]["Handler"] in HANDLERS.values()
    }


def test_the_map_is_distributed_standard_bounded_and_retried(fan_out_app: Synthesized) -> None:
    states = definition(fan_out_app)["States"]
    assert list(states) == [
        "List", "Route",
        "PlanRoute", "PlanInline", "PlanFromManifest", "Check", "Held",
        "SweepRoute", "SweepInline", "SweepFromManifest",
        "Summarize",
    ]  # fmt: skip
    for step, then in (("Plan", "Check"), ("Sweep", "Summarize")):
        for name in (f"{step}Inline", f"{step}FromManifest"):
            state = states[name]
            assert state["Type"] == "Map" and state["MaxConcurrency"] == 7
            assert state["ItemProcessor"]["ProcessorConfig"] == {
                "Mode": "DISTRIBUTED",
                "ExecutionType": "STANDARD",
            }
            assert state["ResultPath"] is None, "child outputs never pile up in the state"
            assert state["Next"] == then
            # The run (its id and its document's digest) comes from the execution's state,
            # never from the item or the manifest.
            assert state["ItemSelector"] == {"item.$": "$$.Map.Item.Value", "run.$": "$.run"}
            child = state["ItemProcessor"]["States"][step]
            (retry,) = child["Retry"]
            assert set(retry["ErrorEquals"]) == set(LAMBDA_RETRY_ERRORS)
            assert retry["BackoffRate"] > 1 and retry["MaxAttempts"] >= 3
            assert child["Catch"][0]["Next"] == "BatchFailed"
        reader = states[f"{step}FromManifest"]["ItemReader"]
        assert reader["Resource"] == "arn:aws:states:::s3:getObject"
        assert reader["Parameters"] == {"Bucket.$": "$.bucket", "Key.$": "$.manifestKey"}
        assert states[f"{step}Inline"]["ItemsPath"] == "$.items"
    for name in ("List", "Check", "Summarize"):
        assert states[name]["Retry"][0]["ErrorEquals"] == list(LAMBDA_RETRY_ERRORS)


def test_a_dry_run_skips_the_guard_and_a_held_run_skips_the_sweep(
    fan_out_app: Synthesized,
) -> None:
    states = definition(fan_out_app)["States"]
    (dry,) = states["Route"]["Choices"]
    assert (dry["Variable"], dry["BooleanEquals"], dry["Next"]) == ("$.dryRun", True, "SweepRoute")
    assert states["Route"]["Default"] == "PlanRoute"
    check = states["Check"]
    assert check["Parameters"]["Payload"] == {"runId.$": "$.runId"}
    assert (check["ResultSelector"], check["ResultPath"]) == (
        {"held.$": "$.Payload.held"},
        "$.guard",
    )
    (held,) = states["Held"]["Choices"]
    assert (held["Variable"], held["BooleanEquals"], held["Next"]) == (
        "$.guard.held",
        True,
        "Summarize",
    )
    assert states["Held"]["Default"] == "SweepRoute"


def test_each_step_invokes_its_own_function(fan_out_app: Synthesized) -> None:
    states = definition(fan_out_app)["States"]
    functions = {handler: logical for logical, handler in fan_out_functions(fan_out_app).items()}
    sweep = states["SweepInline"]["ItemProcessor"]["States"]["Sweep"]
    plan = states["PlanInline"]["ItemProcessor"]["States"]["Plan"]
    invoked = {
        "List": states["List"]["Parameters"]["FunctionName"],
        "Plan": plan["Parameters"]["FunctionName"],
        "Check": states["Check"]["Parameters"]["FunctionName"],
        "Sweep": sweep["Parameters"]["FunctionName"],
        "Summarize": states["Summarize"]["Parameters"]["FunctionName"],
    }
    assert invoked == {step: f"<{functions[handler]}.Arn>" for step, handler in HANDLERS.items()}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "fanOutBatchSize (-c): got 0; expected a whole number from 1 to 1000"),
        ("lots", 'fanOutBatchSize (-c): got "lots"; expected a whole number from 1 to 1000'),
        (1001, "fanOutBatchSize (-c): got 1001"),
    ],
)
def test_fan_out_batch_size_is_validated(value: Any, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        build_app({**cdk_json_context(), "fanOut": True, "fanOutBatchSize": value})
    assert any(problem.startswith(message) for problem in raised.value.problems)


def test_fan_out_and_its_concurrency_are_validated() -> None:
    with pytest.raises(SettingsError) as raised:
        build_app({**cdk_json_context(), "fanOut": "sometimes", "fanOutConcurrency": 0})
    assert sorted(p.split(":")[0] for p in raised.value.problems) == [
        "fanOut (-c)",
        "fanOutConcurrency (-c)",
    ]


def test_the_schedule_starts_the_state_machine_and_may_do_nothing_else(
    fan_out_app: Synthesized,
) -> None:
    machine_id, _ = fan_out_app.only("AWS::StepFunctions::StateMachine")
    _, schedule = fan_out_app.only("AWS::Scheduler::Schedule")
    target = schedule["Properties"]["Target"]
    assert target["Arn"] == {"Ref": machine_id} and target["Input"] == "{}"
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    policies = [
        resource
        for resource in fan_out_app.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in resource["Properties"]["Roles"]
    ]
    (policy,) = policies
    by_sid = {s["Sid"]: s for s in statements(policy["Properties"]["PolicyDocument"])}
    assert set(by_sid) == {"StartFanOut", "SendUndeliveredToDeadLetterQueue"}
    assert actions_of(by_sid["StartFanOut"]) == ["states:StartExecution"]
    assert by_sid["StartFanOut"]["Resource"] == {"Ref": machine_id}
    assert actions_of(by_sid["SendUndeliveredToDeadLetterQueue"]) == ["sqs:SendMessage"]


def test_the_state_machine_may_invoke_only_our_functions(fan_out_app: Synthesized) -> None:
    _, machine = fan_out_app.only("AWS::StepFunctions::StateMachine")
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    functions = fan_out_functions(fan_out_app)
    invoke: list[Any] = []
    other: list[str] = []
    for resource in fan_out_app.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} not in resource["Properties"]["Roles"]:
            continue
        for statement in statements(resource["Properties"]["PolicyDocument"]):
            actions = actions_of(statement)
            if any(a.startswith("lambda:") for a in actions):
                assert actions == ["lambda:InvokeFunction"]
                invoke.extend(statement["Resource"])
            else:
                other.extend(actions)
    assert sorted(invoke, key=str) == sorted(
        ({"Fn::GetAtt": [logical, "Arn"]} for logical in functions), key=str
    )
    assert not any(a.endswith("*") for a in other)
    trust = fan_out_app.template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]
    (statement,) = statements(trust)
    assert statement["Principal"] == {"Service": "states.amazonaws.com"}
    # Only this state machine, in this account, may use the role (no confused deputy).
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {
            "aws:SourceArn": {
                "Fn::Join": [
                    "",
                    [
                        "arn:",
                        {"Ref": "AWS::Partition"},
                        ":states:",
                        {"Ref": "AWS::Region"},
                        ":",
                        {"Ref": "AWS::AccountId"},
                        ":stateMachine:EcrSweeper-FanOut",
                    ],
                ]
            }
        },
    }


def step_roles(app: Synthesized) -> dict[str, str]:
    """Step name -> the logical id of its function's role."""
    handlers = {handler: step for step, handler in HANDLERS.items()}
    return {
        handlers[handler]: app.template["Resources"][logical]["Properties"]["Role"]["Fn::GetAtt"][0]
        for logical, handler in fan_out_functions(app).items()
    }


def role_statements(app: Synthesized, role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for resource in app.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in resource["Properties"]["Roles"]
        for statement in statements(resource["Properties"]["PolicyDocument"])
    ]


def test_each_step_has_a_role_of_its_own_and_only_sweep_may_delete(
    fan_out_app: Synthesized,
) -> None:
    roles = step_roles(fan_out_app)
    sweeper_role = fan_out_app.logical_id(fan_out_app.stack.sweeper.role)
    assert len({*roles.values(), sweeper_role}) == 6
    granted = {
        step: {a for s in role_statements(fan_out_app, role) if s["Effect"] == "Allow"
               for a in actions_of(s)}
        for step, role in roles.items()
    }  # fmt: skip
    assert "ecr:BatchDeleteImage" in granted["Sweep"]
    assert {"ecr:DescribeImages", "ecr:BatchGetImage"} <= granted["Plan"]
    for step in ("List", "Plan", "Check", "Summarize"):
        assert not {a for a in granted[step] if a.startswith(("ecr:BatchDelete", "ecr:Put"))}
        assert "sqs:SendMessage" not in granted[step]
    for step in ("List", "Summarize"):
        assert not {a for a in granted[step] if a.startswith(("ecr:Batch", "sts:", "ssm:Put"))}
    # Check reads and records the approval of a held run; it touches no registry.
    assert {a.split(":")[0] for a in granted["Check"]} == {"logs", "s3", "ssm", "xray"}
    assert {a.split(":")[0] for a in granted["Summarize"]} == {"logs", "s3", "xray"}
    assert "s3:PutObject" not in granted["Summarize"]


def test_only_the_writing_steps_may_write_or_delete_run_documents(
    fan_out_app: Synthesized,
) -> None:
    """Anyone else with s3:PutObject in the account could blank the in-use snapshot."""
    roles = step_roles(fan_out_app)
    _, policy = fan_out_app.only("AWS::S3::BucketPolicy")
    (deny,) = [
        s
        for s in statements(policy["Properties"]["PolicyDocument"])
        if s.get("Sid") == "OnlyTheFanOutWritesRunDocuments"
    ]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert {"s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"} <= set(actions_of(deny))
    writers = deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert writers == [
        {"Fn::GetAtt": [roles[step], "Arn"]} for step in ("List", "Plan", "Check", "Sweep")
    ]


def test_every_run_document_read_is_limited_to_this_accounts_bucket(
    fan_out_app: Synthesized,
) -> None:
    _, machine = fan_out_app.only("AWS::StepFunctions::StateMachine")
    roles = [*step_roles(fan_out_app).values(), machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]]
    reads = [
        s
        for role in roles
        for s in role_statements(fan_out_app, role)
        if {"s3:GetObject", "s3:ListBucket"} & set(actions_of(s))
    ]
    assert len(reads) == 7, (
        "Plan, Check (objects and listing), Sweep, Summarize (objects and listing), "
        "the manifest's reader"
    )
    for statement in reads:
        assert statement["Condition"]["StringEquals"] == {
            "s3:ResourceAccount": {"Ref": "AWS::AccountId"}
        }


def test_logging_and_tracing_are_on(fan_out_app: Synthesized) -> None:
    _, machine = fan_out_app.only("AWS::StepFunctions::StateMachine")
    properties = machine["Properties"]
    assert properties["TracingConfiguration"] == {"Enabled": True}
    assert properties["LoggingConfiguration"]["Level"] == "ALL"
    assert properties["LoggingConfiguration"]["Destinations"]
    assert properties["StateMachineType"] == "STANDARD"
    sweeper_logs = fan_out_app.logical_id(fan_out_app.stack.sweeper.log_group)
    for logical in fan_out_functions(fan_out_app):
        function = fan_out_app.template["Resources"][logical]["Properties"]
        assert function["TracingConfig"] == {"Mode": "Active"}
        # One log group for every step: the dashboard's queries see the fan-out's records too.
        assert function["LoggingConfig"]["LogGroup"] == {"Ref": sweeper_logs}
        assert "ReservedConcurrentExecutions" not in function


def test_the_run_bucket_is_encrypted_ssl_only_private_and_expires(
    fan_out_app: Synthesized,
) -> None:
    bucket_id, bucket = fan_out_app.only("AWS::S3::Bucket")
    properties = bucket["Properties"]
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
    (rule,) = properties["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == RUN_DOCUMENTS_DAYS and rule["Status"] == "Enabled"
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": RUN_DOCUMENTS_DAYS}
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    _, policy = fan_out_app.only("AWS::S3::BucketPolicy")
    deny, _writers = statements(policy["Properties"]["PolicyDocument"])
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    for logical in fan_out_functions(fan_out_app):
        variables = fan_out_app.template["Resources"][logical]["Properties"]["Environment"]
        assert variables["Variables"]["SWEEPER_RUN_BUCKET"] == {"Ref": bucket_id}


def test_fan_out_passes_aws_solutions_checks_and_cfn_lint(fan_out_app: Synthesized) -> None:
    report = json.loads((fan_out_app.outdir / "validation-report.json").read_text("utf-8"))
    assert all(
        not plugin["violations"]
        for plugin in report["pluginReports"]
        if plugin["pluginName"] == "AwsSolutions"
    )
    config = cfnlint.api.ManualArgs(regions=["us-east-1", "eu-central-1"], ignore_checks=["W3005"])
    assert [str(m) for m in cfnlint.api.lint_file(fan_out_app.template_file, config=config)] == []


def test_without_fan_out_the_stack_is_the_single_lambda(
    default_app: Synthesized, tmp_path: Path
) -> None:
    kinds = {resource["Type"] for resource in default_app.template["Resources"].values()}
    assert not kinds & FAN_OUT_TYPES
    assert len(default_app.resources("AWS::Lambda::Function")) == 1
    function_id = default_app.logical_id(default_app.stack.sweeper.function)
    _, schedule = default_app.only("AWS::Scheduler::Schedule")
    assert schedule["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    # Apart from the settings document in the function's environment, leaving the fan-out keys
    # out of the context gives the very same template.
    context = {k: v for k, v in cdk_json_context().items() if not k.startswith("fanOut")}
    app, stack = build_app(context, outdir=str(tmp_path))
    without = app.synth().get_stack_by_name(stack.stack_name).template
    assert without == default_app.template


def test_fan_out_adds_resources_and_changes_only_the_schedule_and_the_sweeper_role(
    default_app: Synthesized, fan_out_app: Synthesized
) -> None:
    before = default_app.template["Resources"]
    after = fan_out_app.template["Resources"]
    assert set(before) < set(after)
    changed = {after[k]["Type"] for k in before if after[k] != before[k]}
    # The function's settings document says fanOut; the role gains the run bucket; the
    # schedule (and its role's policy) starts the state machine.
    assert changed == {"AWS::Lambda::Function", "AWS::IAM::Policy", "AWS::Scheduler::Schedule"}
    added = {after[k]["Type"] for k in set(after) - set(before)}
    assert added >= FAN_OUT_TYPES and "AWS::Lambda::Function" in added
    assert len(fan_out_functions(fan_out_app)) == 5
    assert "StateMachineArn" in fan_out_app.template["Outputs"]


def test_each_fan_out_acknowledgment_matches_a_real_finding(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fan_out_app: Synthesized
) -> None:
    """With acknowledgments off, the fan-out's own findings are exactly the acknowledged ones."""
    import aws_cdk as cdk
    from test_compliance import _acknowledgments, _nag_findings

    monkeypatch.setattr(cdk.Validations, "acknowledge", lambda self, *rules: None)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        synthesize({"fanOut": "true", "fanOutBatchSize": "25", "fanOutConcurrency": 7}, tmp_path)
    assert _nag_findings(tmp_path) == set(_acknowledgments(fan_out_app))


def test_a_failed_execution_alarms_on_the_topic(fan_out_app: Synthesized) -> None:
    machine_id, _ = fan_out_app.only("AWS::StepFunctions::StateMachine")
    topic_id, _ = fan_out_app.only("AWS::SNS::Topic")
    alarms = fan_out_app.resources("AWS::CloudWatch::Alarm")
    assert len(alarms) == 10, "the stack's nine and the fan-out's own"
    (alarm,) = [a for k, a in alarms.items() if "ExecutionsFailed" in k]
    properties = alarm["Properties"]
    names = {
        m["MetricStat"]["Metric"]["MetricName"] for m in properties["Metrics"] if "MetricStat" in m
    }
    assert names == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    for m in properties["Metrics"]:
        if "MetricStat" in m:
            (dimension,) = m["MetricStat"]["Metric"]["Dimensions"]
            assert dimension["Value"] == {"Ref": machine_id}
    assert properties["AlarmActions"] == [{"Ref": topic_id}]
    assert properties["Threshold"] == 1
