"""The fan-out state machine, as synthesized from the stack, run by moto's ASL interpreter
against the local ECR: same end state and same metrics as the single Lambda.

moto runs Lambda code only in Docker, so the one seam patched is where its Step Functions
interpreter invokes Lambda (`lambda_eval_utils.boto_client_for("lambda")`): the invocation goes
to the handler the template names for that function, in this process. Everything else, the
definition, S3 (work items, manifest, results), ECR, ECS and Lambda reads, is real moto.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest
from helpers.lambda_context import LambdaContext
from helpers.sweep import push, remaining
from moto.core.config import default_user_config
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from test_handler import per_repository

from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core import metrics_catalog
from ecr_sweeper.sweep import fan_out
from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "ecr-sweeper-runs"
STATE_PARAMETER = "/ecr-sweeper/state"
REPOSITORIES = ("api", "batch/jobs", "web", "worker", "zeta")


def resolve(value: Any, refs: dict[str, str]) -> Any:
    """CloudFormation intrinsics of the template, as deployment would resolve them."""
    if isinstance(value, dict) and len(value) == 1:
        (name, argument), *_ = value.items()
        if name == "Ref":
            return refs[argument]
        if name == "Fn::GetAtt":
            logical, attribute = argument
            assert attribute == "Arn"
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical}"
        if name == "Fn::Join":
            separator, parts = argument
            return separator.join(str(resolve(part, refs)) for part in parts)
    if isinstance(value, dict):
        return {key: resolve(item, refs) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, refs) for item in value]
    return value


@dataclass
class Deployed:
    """The synthesized fan-out, resolved: its ASL and, per function ARN, the handler it runs."""

    definition: str
    handlers: dict[str, str]
    environment: dict[str, str]


def deploy(template: dict[str, Any]) -> Deployed:
    resources = template["Resources"]
    refs = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
    refs.update({k: BUCKET for k, r in resources.items() if r["Type"] == "AWS::S3::Bucket"})
    refs.update(
        {k: STATE_PARAMETER for k, r in resources.items() if r["Type"] == "AWS::SSM::Parameter"}
    )
    (machine,) = [r for r in resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    definition = resolve(machine["Properties"]["DefinitionString"], refs)
    handlers: dict[str, str] = {}
    environments = []
    for logical, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical}"
        if arn in definition:
            handlers[arn] = resource["Properties"]["Handler"]
            environments.append(resolve(resource["Properties"]["Environment"]["Variables"], refs))
    assert len(handlers) == 5 and all(e == environments[0] for e in environments)
    return Deployed(definition, handlers, environments[0])


class InProcessLambda:
    """What moto's interpreter gets for "lambda": `invoke` runs our handler here, and answers as
    Lambda does (an unhandled error is a 200 with FunctionError and errorType)."""

    def __init__(self, handlers: dict[str, Callable[[Any, Any], Any]]) -> None:
        self._handlers = handlers
        self.invocations: list[str] = []
        self.payload_bytes: list[tuple[str, int]] = []
        """(function, bytes of its input) as the interpreter sent each invocation."""
        self.crash_batches: set[int] = set()
        """Work items whose invocation dies as a Lambda sandbox can (timeout, out of memory)."""

    def invoke(self, FunctionName: str, Payload: bytes | None = None, **_: Any) -> dict[str, Any]:
        self.invocations.append(FunctionName)
        self.payload_bytes.append((FunctionName, len(Payload or b"")))
        event = json.loads(Payload or b"{}")
        item = event.get("item") if isinstance(event, dict) else None
        if isinstance(item, dict) and item.get("batch") in self.crash_batches:
            body = {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out"}
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": _stream(body)}
        try:
            result = self._handlers[FunctionName](event, LambdaContext(str(uuid.uuid4())))
        except Exception as error:
            body = {"errorType": type(error).__name__, "errorMessage": str(error)}
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": _stream(body)}
        return {"StatusCode": 200, "Payload": _stream(result)}


def _stream(document: Any) -> io.BytesIO:
    return io.BytesIO(json.dumps(document).encode())


def _log_to(stream: Any) -> None:
    for handler in logging.getLogger(metrics_catalog.SERVICE).handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = stream


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from infra import synthesized_template
    from infra.config import cdk_json_context

    return synthesized_template({**cdk_json_context(), "fanOut": True, "fanOutBatchSize": 2})


@pytest.fixture
def machine(
    template: dict[str, Any], local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Deployed, InProcessLambda]]:
    deployed = deploy(template)
    for name, value in deployed.environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_ecr.endpoint_url)
    for name in ("POWERTOOLS_DEV", "POWERTOOLS_METRICS_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})
    # The interpreter's other clients (S3 for the ItemReader) go to the local server.
    monkeypatch.setenv("MOTO_PORT", local_ecr.endpoint_url.rsplit(":", 1)[1])
    module = importlib.reload(importlib.import_module("ecr_sweeper.handlers.fan_out"))
    lambdas = InProcessLambda(
        {arn: getattr(module, h.rsplit(".", 1)[1]) for arn, h in deployed.handlers.items()}
    )
    original = lambda_eval_utils.boto_client_for

    def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        if service == "lambda":
            return lambdas
        return original(region=region, service=service, state_credentials=state_credentials)

    monkeypatch.setattr(lambda_eval_utils, "boto_client_for", client_for)
    local_ecr.client("s3").create_bucket(Bucket=BUCKET)
    local_ecr.client("ssm").put_parameter(Name=STATE_PARAMETER, Value="{}", Type="String")
    yield deployed, lambdas
    _log_to(sys.__stdout__)


def run_machine(local_ecr: LocalEcr, deployed: Deployed, event: dict[str, Any]) -> dict[str, Any]:
    _log_to(sys.stdout)  # this test's captured stdout, as Lambda's is its log stream
    sfn = local_ecr.client("stepfunctions")
    arn = sfn.create_state_machine(
        name=f"fan-out-{uuid.uuid4().hex[:8]}",
        definition=deployed.definition,
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/fan-out",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(event))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.2)
    raise AssertionError("the state machine did not finish in 120 s")


def seed(local_ecr: LocalEcr) -> None:
    make = ManifestFactory(random.Random(7))
    for number, repository in enumerate(REPOSITORIES):
        for tag in range(12 + number):
            push(local_ecr, repository, make.image(compact=True), f"v{tag}", 40 - tag)
        for days in (9, 5, 0.5):
            push(local_ecr, repository, make.image(compact=True), None, days)


def registry_state(local_ecr: LocalEcr) -> dict[str, list[tuple[str, ...]]]:
    """What is left, by tags (digests of untagged images are random per push)."""
    return {
        repository: sorted(remaining(local_ecr, repository).values()) for repository in REPOSITORIES
    }


def records(output: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [r for r in lines if "_aws" not in r], [r for r in lines if "_aws" in r]


def metric_values(document: dict[str, Any]) -> dict[str, Any]:
    names = {m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    return {name: document[name] for name in names if name != metrics_catalog.RUN_DURATION_SECONDS}


def single_lambda_run(
    local_ecr: LocalEcr, capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The single Lambda on a freshly seeded registry: (end state, metrics)."""
    local_ecr.reset()
    seed(local_ecr)
    handler: ModuleType = importlib.reload(importlib.import_module("ecr_sweeper.handlers.sweeper"))
    _log_to(sys.stdout)
    handler.lambda_handler({}, LambdaContext("single-run"))
    (document,) = records(capsys.readouterr().out)[1]
    return registry_state(local_ecr), metric_values(document)


def test_the_synthesized_state_machine_sweeps_like_the_single_lambda(
    machine: tuple[Deployed, InProcessLambda],
    local_ecr: LocalEcr,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deployed, lambdas = machine
    seed(local_ecr)
    described = run_machine(local_ecr, deployed, {})
    assert described["status"] == "SUCCEEDED", described
    logs, emf = records(capsys.readouterr().out)
    fanned_state = registry_state(local_ecr)

    output = json.loads(described["output"])
    assert output["repositories"] == len(REPOSITORIES) and output["failures"] == 0
    assert output["imagesDeleted"] > 0
    # List, three batches of at most two repositories, Summarize.
    steps = [deployed.handlers[arn].rsplit(".", 1)[1] for arn in lambdas.invocations]
    assert steps == [
        "list_handler",
        *["plan_handler"] * 3,
        "check_handler",
        *["sweep_handler"] * 3,
        "summarize_handler",
    ]
    assert output["guard"]["held"] is False and output["outcome"] == "succeeded"
    summaries = [r for r in logs if r.get(ev.EVENT) == ev.RUN_SUMMARY]
    assert len(summaries) == 1 and summaries[0]["imagesDeleted"] == output["imagesDeleted"]
    assert "perRepository" not in summaries[0] and "perRepository" not in output
    assert sorted(r["repository"] for r in per_repository(logs)) == sorted(REPOSITORIES)
    deleted = [r for r in logs if r.get(ev.EVENT) == ev.IMAGE_DELETED]
    assert len(deleted) == output["imagesDeleted"]
    (document,) = emf
    fanned_metrics = metric_values(document)
    keys = local_ecr.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]
    results = [k["Key"] for k in keys if fan_out.RESULTS_FOLDER in k["Key"]]
    assert len(results) == 3

    single_state, single_metrics = single_lambda_run(local_ecr, capsys)
    assert fanned_state == single_state
    assert fanned_metrics == single_metrics


def test_many_batches_travel_by_s3_manifest(
    machine: tuple[Deployed, InProcessLambda],
    local_ecr: LocalEcr,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployed, lambdas = machine
    monkeypatch.setattr(fan_out, "PAYLOAD_LIMIT_BYTES", 800)  # 3 items pass it, a child not
    seed(local_ecr)
    described = run_machine(local_ecr, deployed, {"dryRun": True})
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert output["dryRun"] is True and output["imagesDeleted"] == 0
    assert output["imagesExpired"] > 0 and output["repositories"] == len(REPOSITORIES)
    keys = [k["Key"] for k in local_ecr.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert any(k.endswith(fan_out.MANIFEST_DOCUMENT) for k in keys)
    assert registry_state(local_ecr)["web"] and len(lambdas.invocations) == 5


def test_a_batch_whose_sweep_dies_is_reported_and_the_others_still_run(
    machine: tuple[Deployed, InProcessLambda],
    local_ecr: LocalEcr,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deployed, lambdas = machine
    lambdas.crash_batches.add(1)
    seed(local_ecr)
    described = run_machine(local_ecr, deployed, {})
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    # Batch 1 is "web" and "worker" (name order, two per batch).
    assert output["repositoriesFailed"] == 2 and output["repositories"] == 3
    assert output["failures"] == 2
    assert len(remaining(local_ecr, "web")) == 12 + 2 + 3
    (document,) = records(capsys.readouterr().out)[1]
    assert document[metrics_catalog.FAILED_REPOSITORIES] == [2]


def test_the_fan_out_sweeps_every_account_and_region(
    machine: tuple[Deployed, InProcessLambda],
    local_ecr: LocalEcr,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from test_targets import MEMBER, OTHER_MEMBER, left
    from test_targets import seed as seed_target

    from ecr_sweeper.core.settings import ENVIRONMENT_VARIABLE
    from ecr_sweeper.core.settings import StackSettings as Settings

    deployed, _lambdas = machine
    settings = Settings(
        keep_tagged_images=2,
        protect_lambda_images=False,
        fan_out=True,
        fan_out_batch_size=1,
        regions=("us-east-1", "eu-west-1"),
        accounts=(MEMBER, OTHER_MEMBER),
        guard_max_deletion_fraction=1.0,  # 60% of these registries go
    )
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, settings.to_json())
    seed_target(local_ecr, monkeypatch, "web", account=MEMBER)
    seed_target(local_ecr, monkeypatch, "api", account=MEMBER, region="eu-west-1")
    seed_target(local_ecr, monkeypatch, "web", account=OTHER_MEMBER, region="eu-west-1")
    # The second member's role can't be assumed when List lists its us-east-1 registry.
    local_ecr.faults.throttle("AssumeRole", service="sts", on_calls=[3], code="AccessDenied")
    described = run_machine(local_ecr, deployed, {})
    assert described["status"] == "SUCCEEDED", described
    logs = records(capsys.readouterr().out)[0]
    (summary,) = [r for r in logs if r.get(ev.EVENT) == ev.RUN_SUMMARY]
    rows = sorted((r["target"], r["repository"], r["status"]) for r in per_repository(logs))
    assert rows == [
        (f"{MEMBER}/eu-west-1", "api", "swept"),
        (f"{MEMBER}/us-east-1", "web", "swept"),
        (f"{OTHER_MEMBER}/eu-west-1", "web", "swept"),
        (f"{OTHER_MEMBER}/us-east-1", "*", "failed"),
    ]
    assert summary["imagesDeleted"] == 9 and summary["failures"] == 1
    assert left(local_ecr, "web", account=MEMBER) == 2
    assert left(local_ecr, "api", account=MEMBER, region="eu-west-1") == 2
    assert left(local_ecr, "web", account=OTHER_MEMBER, region="eu-west-1") == 2


def run_summary(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    (summary,) = [
        r for r in records(capsys.readouterr().out)[0] if r.get(ev.EVENT) == ev.RUN_SUMMARY
    ]
    return summary


def test_images_in_use_travel_from_list_to_every_child_and_fail_closed(
    machine: tuple[Deployed, InProcessLambda],
    local_ecr: LocalEcr,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from test_targets import left
    from test_targets import seed as seed_target

    from ecr_sweeper.core.settings import ENVIRONMENT_VARIABLE
    from ecr_sweeper.core.settings import StackSettings as Settings

    deployed, _lambdas = machine
    settings = Settings(
        keep_tagged_images=2,
        protect_lambda_images=False,
        fan_out=True,
        guard_max_deletion_fraction=1.0,  # 60% of these registries go
    )
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, settings.to_json())
    seed_target(local_ecr, monkeypatch, "web")  # v0..v3 and one old untagged image
    seed_target(local_ecr, monkeypatch, "api")
    ecs = local_ecr.client("ecs")
    ecs.create_cluster(clusterName="prod")
    definition = ecs.register_task_definition(
        family="web",
        containerDefinitions=[
            {
                "name": "web",
                "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/web:v0",
                "memory": 64,
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.run_task(cluster="prod", taskDefinition=definition, launchType="FARGATE")

    # The in-use sources can't be read: List records it, and no child deletes anything.
    local_ecr.faults.error(500, "ListClusters", service="ecs")
    assert run_machine(local_ecr, deployed, {})["status"] == "SUCCEEDED"
    (summary,) = [
        r for r in records(capsys.readouterr().out)[0] if r.get(ev.EVENT) == ev.RUN_SUMMARY
    ]
    assert summary["imagesDeleted"] == 0 and summary["repositoriesUncertain"] == 2
    assert left(local_ecr, "web") == 5 and left(local_ecr, "api") == 5

    # Readable again: web:v0, in use by the task, is kept by every child that sees web.
    local_ecr.faults.clear()
    assert run_machine(local_ecr, deployed, {})["status"] == "SUCCEEDED"
    (summary,) = [
        r for r in records(capsys.readouterr().out)[0] if r.get(ev.EVENT) == ev.RUN_SUMMARY
    ]
    assert summary["keptByProtection"] == {"in-use": 1}
    assert summary["imagesDeleted"] == 5  # web: v1 and the untagged one; api: v0, v1, untagged
    tags = sorted(t for tags in remaining(local_ecr, "web").values() for t in tags)
    assert tags == ["v0", "v2", "v3"]


def checked(s3: Any, bucket: str, run_id: str, planned: dict[str, int]) -> None:
    """What Plan and Check leave for batch 0 of a live run that proceeds: the decision, and what
    its planning child counted per repository."""
    from ecr_sweeper.core.guard import decide

    prefix = fan_out.run_prefix(run_id)
    decision = decide(planned.items(), 10, max_fraction=1, max_deletions=None)
    documents = {
        fan_out.GUARD_DOCUMENT: decision.to_dict(),
        f"{fan_out.PLANS_FOLDER}000000.json": {"batch": 0, "results": [], "wouldDelete": planned},
    }
    for key, document in documents.items():
        s3.put_object(Bucket=bucket, Key=prefix + key, Body=json.dumps(document).encode())


def test_a_child_sweeps_only_what_the_settings_select_whatever_its_item_names(
    local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings are checked again in the child: a repository they exclude stays untouched
    even in a batch List wrote (here, before the exclusion was deployed)."""
    from test_targets import left
    from test_targets import seed as seed_target

    from ecr_sweeper.aws.clients import AwsTarget
    from ecr_sweeper.core.settings import Settings

    seed_target(local_ecr, monkeypatch, "web")
    seed_target(local_ecr, monkeypatch, "prod/api")
    before = Settings(keep_tagged_images=2, protect_lambda_images=False)
    after = Settings(
        keep_tagged_images=2, exclude_repositories=("prod/*",), protect_lambda_images=False
    )
    local_ecr.client("s3").create_bucket(Bucket="runs")
    base = AwsTarget(region=REGION, endpoint_url=local_ecr.endpoint_url)
    logger = logging.getLogger("t")
    state = fan_out.list_work(
        base, before, logger, run_id="run-1", dry_run=False, bucket="runs",
        started_at=datetime.now(UTC),
    )  # fmt: skip
    (item,) = state["items"]
    assert [r["name"] for r in item["repositories"]] == ["prod/api", "web"]
    event = {"item": item, "run": state["run"]}
    checked(local_ecr.client("s3"), "runs", "run-1", {"prod/api": 3, "web": 3})
    counts = fan_out.sweep_batch(base, after, logger, event, bucket="runs", account=ACCOUNT)
    assert counts["repositories"] == 1 and counts["imagesDeleted"] == 3
    assert left(local_ecr, "prod/api") == 5
    assert left(local_ecr, "web") == 2


def test_the_fan_out_holds_as_a_whole_and_no_child_deletes(
    machine: tuple[Deployed, InProcessLambda],
    local_ecr: LocalEcr,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ecr_sweeper.core.settings import ENVIRONMENT_VARIABLE
    from ecr_sweeper.core.settings import StackSettings as Settings

    deployed, lambdas = machine
    # Keep two of 12-16 tagged images: every batch deletes most of its images.
    settings = Settings(keep_tagged_images=2, fan_out=True, fan_out_batch_size=2)
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, settings.to_json())
    seed(local_ecr)
    before = registry_state(local_ecr)
    described = run_machine(local_ecr, deployed, {})
    assert described["status"] == "SUCCEEDED", described
    assert registry_state(local_ecr) == before, "no child deleted anything"
    steps = [deployed.handlers[arn].rsplit(".", 1)[1] for arn in lambdas.invocations]
    assert "sweep_handler" not in steps and steps.count("plan_handler") == 3
    logs, emf = records(capsys.readouterr().out)
    (held,) = [r for r in logs if r.get(ev.EVENT) == ev.GUARD_HELD]
    (summary,) = [r for r in logs if r.get(ev.EVENT) == ev.RUN_SUMMARY]
    assert summary["outcome"] == "held" and summary["imagesDeleted"] == 0
    assert summary["imagesExpired"] == held["wouldDelete"] > held["imagesScanned"] / 2
    # Summarize logs each repository of a held run (no sweeping child ran to log it).
    assert sorted(r["repository"] for r in per_repository(logs)) == sorted(REPOSITORIES)
    assert len(held["topRepositories"]) == 5
    assert not [r for r in logs if r.get(ev.EVENT) == ev.IMAGE_DELETED]
    (document,) = emf
    assert document[metrics_catalog.GUARD_HELD] == [1.0]


def test_a_sweeping_child_holds_a_repository_whose_plan_grew(
    local_ecr: LocalEcr, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child deletes in a repository only up to what the run's planning counted there, so a
    held run can't be split into small approved-looking pieces; without a decision to proceed
    it deletes nothing at all."""
    from test_targets import left
    from test_targets import seed as seed_target

    from ecr_sweeper.aws.clients import AwsTarget
    from ecr_sweeper.core.settings import Settings

    seed_target(local_ecr, monkeypatch, "web")  # keep 2 of v0..v3 and one old untagged: 3 go
    seed_target(local_ecr, monkeypatch, "api")
    settings = Settings(keep_tagged_images=2, protect_lambda_images=False)
    s3 = local_ecr.client("s3")
    s3.create_bucket(Bucket="runs")
    base = AwsTarget(region=REGION, endpoint_url=local_ecr.endpoint_url)
    log = logging.getLogger("t")
    state = fan_out.list_work(
        base, settings, log, run_id="run-1", dry_run=False, bucket="runs",
        started_at=datetime.now(UTC),
    )  # fmt: skip
    (item,) = state["items"]
    event = {"item": item, "run": state["run"]}

    def sweep() -> int:
        counts = fan_out.sweep_batch(base, settings, log, event, bucket="runs", account=ACCOUNT)
        return int(counts["imagesDeleted"])

    assert sweep() == 0, "no decision yet: the child acts as a dry run"
    assert left(local_ecr, "web") == 5 and left(local_ecr, "api") == 5

    checked(s3, "runs", "run-1", {"api": 3, "web": 2})
    assert sweep() == 3
    assert left(local_ecr, "api") == 2, "api deletes what was planned there"
    assert left(local_ecr, "web") == 5, "web's plan grew past its planned 2: held"
    key = fan_out.run_prefix("run-1") + fan_out.RESULTS_FOLDER + "000000.json"
    written = json.loads(s3.get_object(Bucket="runs", Key=key)["Body"].read())
    web = next(r for r in written["results"] if r["repository"] == "web")
    assert web["status"] == "held" and "counted 2" in web["reason"]


def many_repositories(local_ecr: LocalEcr, count: int, length: int, stem: str) -> None:
    """`count` empty repositories whose names are `length` characters, straight into the
    emulator's backend (thousands of CreateRepository calls would be slow)."""
    from local_ecr.store import ensure_repository

    with local_ecr.state_lock:
        for number in range(count):
            name = f"{stem}-{number:05d}-".ljust(length, "x")
            ensure_repository(local_ecr.account_id, local_ecr.region, name)


STATE_LIMIT = 256 * 1024
"""Step Functions' limit on a state's input or output, in bytes of UTF-8 JSON."""


def test_list_of_2000_repositories_with_40_character_names_stays_under_the_state_limit(
    local_ecr: LocalEcr,
) -> None:
    """Count-based, List put these 40 batches inline: 308,922 bytes. Sized in bytes, its output
    goes by manifest, and every child's input (item and run, as the Map passes it) fits."""
    from ecr_sweeper.aws.clients import AwsTarget
    from ecr_sweeper.core.settings import Settings

    many_repositories(local_ecr, 2000, 40, "team/service")
    local_ecr.client("s3").create_bucket(Bucket="runs")
    state = fan_out.list_work(
        AwsTarget(region=REGION, endpoint_url=local_ecr.endpoint_url),
        Settings(),
        logging.getLogger("t"),
        run_id=str(uuid.uuid4()),
        dry_run=True,
        bucket="runs",
        started_at=datetime.now(UTC),
    )
    output = len(json.dumps(state).encode())  # as Lambda's runtime returns it
    assert output < fan_out.PAYLOAD_LIMIT_BYTES < STATE_LIMIT
    assert "manifestKey" in state and "items" not in state and state["batches"] == 40
    body = local_ecr.client("s3").get_object(Bucket="runs", Key=state["manifestKey"])["Body"]
    items = json.loads(body.read())
    assert sum(len(item["repositories"]) for item in items) == 2000
    largest = max(len(json.dumps({"item": i, "run": state["run"]}).encode()) for i in items)
    assert largest < fan_out.PAYLOAD_LIMIT_BYTES


def test_a_batch_of_1000_repositories_with_100_character_names_is_cut_in_bytes(
    machine: tuple[Deployed, InProcessLambda],
    local_ecr: LocalEcr,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Count-based, one child got all 1,000 (271,168 bytes, past the state limit). Sized in
    bytes, each child's input, as moto's interpreter sends it, stays under 200,000 bytes, and
    every repository is still swept once."""
    from ecr_sweeper.core.settings import ENVIRONMENT_VARIABLE
    from ecr_sweeper.core.settings import StackSettings as Settings

    deployed, lambdas = machine
    settings = Settings(fan_out=True, fan_out_batch_size=1000)
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, settings.to_json())
    many_repositories(local_ecr, 1000, 100, "platform/team/service")
    described = run_machine(local_ecr, deployed, {"dryRun": True})
    assert described["status"] == "SUCCEEDED", described
    sweep_arn = next(a for a, h in deployed.handlers.items() if h.endswith(".sweep_handler"))
    children = [size for arn, size in lambdas.payload_bytes if arn == sweep_arn]
    assert len(children) == 2 and max(children) < fan_out.PAYLOAD_LIMIT_BYTES
    assert json.loads(described["output"])["repositories"] == 1000
    logs = records(capsys.readouterr().out)[0]
    (summary,) = [r for r in logs if r.get(ev.EVENT) == ev.RUN_SUMMARY]
    assert summary["repositoriesByStatus"] == {"swept": 1000}
    assert len({r["repository"] for r in per_repository(logs)}) == 1000
