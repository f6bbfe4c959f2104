"""Bad input never runs live and never ends in a traceback: one table of every case, through
the CLI in process (`main(argv)`, exit 2 and one line on stderr) or the synth path (`build_app`
and cdk.json's reading raise one SettingsError naming the key and where its value came from)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ecr_sweeper.core.settings import Settings, SettingsError
from ecr_sweeper_cli.main import main
from infra import build_app
from infra.config import CDK_JSON, cdk_json_context

DIGEST = "sha256:" + "a" * 64
POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "selection": {
                "tagStatus": "untagged",
                "countType": "imageCountMoreThan",
                "countNumber": 1,
            },
            "action": {"type": "expire"},
        }
    ]
}
DEEP = "[" * 100_000 + "]" * 100_000


def _images(pushed_at: str) -> str:
    """An `aws ecr describe-images` document with a raw JSON value for imagePushedAt."""
    detail = f'"imageDigest": "{DIGEST}", "imageTags": ["v1"], "imagePushedAt": {pushed_at}'
    return '{"imageDetails": [{' + detail + "}]}"


def _big_policy_with_a_bad_rule() -> str:
    """About 8 KB of policy whose third rule has an unknown countType."""
    rules = [
        {
            "rulePriority": n,
            "description": f"MARKER-{n} " + "x" * 200,
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": [f"team{n}-*"],
                "countType": "imageCountMoreThan" if n != 3 else "imageCountMoreThen",
                "countNumber": 5,
            },
            "action": {"type": "expire"},
        }
        for n in range(1, 31)
    ]
    return json.dumps({"rules": rules})


FILES: dict[str, str | bytes] = {
    "package.json": json.dumps({"name": "web", "version": "1.0.0"}),
    "no-context.json": json.dumps({"app": ".venv/bin/python app.py"}),
    "list-context.json": json.dumps({"app": "x", "context": ["keepTaggedImages"]}),
    "flags-only.json": json.dumps({"context": {"@aws-cdk/core:checkSecretUsage": True}}),
    "nested.json": '{"context": {"keepTaggedImages": 3, "deep": ' + DEEP + "}}",
    "spaced-key.json": json.dumps({"context": {"keepTaggedImages": 3, "dryRun ": True}}),
    "bad-value.json": json.dumps({"context": {"keepTaggedImages": "many"}}),
    "latin1-policy.json": '{"rules": [{"description": "caf\u00e9"}]}'.encode("latin-1"),
    "bad-rule-policy.json": _big_policy_with_a_bad_rule(),
    "policy.json": json.dumps(POLICY),
    "nested-images.json": DEEP,
    "images-1e20.json": _images("1e20"),
    "images-infinity.json": _images("Infinity"),
    "images-nan.json": _images("NaN"),
    "images-negative.json": _images("-1e11"),
    "images-millis.json": _images("1767225600000"),
}


@dataclass(frozen=True)
class Case:
    id: str
    says: tuple[str, ...]
    """Every one of these is in the one-line error."""
    argv: tuple[str, ...] = ()
    """CLI arguments ({tmp} is the folder of FILES and of a copy of cdk.json as cdk.json)."""
    context: dict[str, Any] = field(default_factory=dict)
    """Synth path: cdk.json's context with these keys added."""
    cdk_json: str | None = None
    """Synth path: cdk.json is this file of FILES."""
    never: tuple[str, ...] = ()
    """None of these may be in the error (e.g. the text of the policy)."""


def plan(*arguments: str) -> tuple[str, ...]:
    return (
        "plan",
        "--config",
        "{tmp}/cdk.json",
        "--endpoint-url",
        "http://127.0.0.1:9",
        *arguments,
    )


def evaluate(images: str) -> tuple[str, ...]:
    return (
        "evaluate",
        "--policy",
        "{tmp}/policy.json",
        "--images",
        f"{{tmp}}/{images}",
        "--now",
        "2026-11-30T00:00:00Z",
    )


DID_YOU_MEAN_DRY_RUN = "did you mean 'dryRun'?"
CASES = [
    # A damaged key is refused, never dropped.
    Case("-c 'dryRun =true'", ('"dryRun "', DID_YOU_MEAN_DRY_RUN), argv=plan("-c", "dryRun =true")),
    Case("-c ' dryRun=true'", ('" dryRun"', DID_YOU_MEAN_DRY_RUN), argv=plan("-c", " dryRun=true")),
    Case(
        "synth key 'dryRun '", ('"dryRun " (-c)', DID_YOU_MEAN_DRY_RUN), context={"dryRun ": "true"}
    ),
    Case("synth key ' dryRun'", ('" dryRun"', DID_YOU_MEAN_DRY_RUN), context={" dryRun": "true"}),
    Case("synth key 'Dry Run'", ('"Dry Run"', DID_YOU_MEAN_DRY_RUN), context={"Dry Run": True}),
    Case("synth key dry_run", ("dry_run", DID_YOU_MEAN_DRY_RUN), context={"dry_run": True}),
    Case(
        "cdk.json key 'dryRun '",
        ('"dryRun "', DID_YOU_MEAN_DRY_RUN),
        argv=plan("--config", "{tmp}/spaced-key.json"),
    ),
    Case(
        "not CDK's key",
        ("team:owner", "neither an ecr-sweeper setting nor a CDK context key"),
        context={"team:owner": "me"},
    ),
    Case(
        "a fake feature flag",
        ("@my-org/thing:flag", "neither"),
        context={"@my-org/thing:flag": True},
    ),
    # The wrong config file, or a cdk.json without settings.
    Case(
        "--config package.json",
        ("package.json", 'no "context" object'),
        argv=plan("--config", "{tmp}/package.json"),
    ),
    Case(
        "cli cdk.json without context",
        ("no-context.json", 'no "context" object'),
        argv=plan("--config", "{tmp}/no-context.json"),
    ),
    Case(
        "cli context not an object",
        ('a non-object "context"',),
        argv=plan("--config", "{tmp}/list-context.json"),
    ),
    Case(
        "cli cdk.json without settings",
        ("flags-only.json", "holds no ecr-sweeper setting"),
        argv=plan("--config", "{tmp}/flags-only.json"),
    ),
    Case("synth cdk.json without context", ('no "context" object',), cdk_json="no-context.json"),
    Case("synth context not an object", ('a non-object "context"',), cdk_json="list-context.json"),
    # Empty lists that would change what a sweep deletes.
    Case(
        "includeRepositories=",
        ("includeRepositories (-c)", "empty"),
        argv=plan("-c", "includeRepositories="),
    ),
    Case(
        "includeRepositories=[]",
        ("includeRepositories (-c)", "would sweep nothing"),
        argv=plan("-c", "includeRepositories=[]"),
    ),
    Case(
        "protectedTags=",
        ("protectedTags (-c)", "write [] for no protected tag"),
        argv=plan("-c", "protectedTags="),
    ),
    Case("protectedTags= ,", ("protectedTags (-c)", "empty"), argv=plan("-c", "protectedTags= , ")),
    Case("synth protectedTags ''", ("protectedTags (-c)", "empty"), context={"protectedTags": ""}),
    # Schedules that EventBridge Scheduler would refuse at deploy.
    Case(
        "cron * in both day fields",
        ("scheduleExpression (-c)", "one of day-of-month and day-of-week"),
        context={"scheduleExpression": "cron(0 3 * * * *)"},
    ),
    Case(
        "cron(99 99 99 99 99 99)",
        ("scheduleExpression (-c)", "not both"),
        context={"scheduleExpression": "cron(99 99 99 99 99 99)"},
    ),
    Case(
        "cron minutes out of range",
        ("scheduleExpression (-c)", "minutes '99'"),
        context={"scheduleExpression": "cron(99 3 ? * * *)"},
    ),
    Case(
        "cron month out of range",
        ("month '13'",),
        context={"scheduleExpression": "cron(0 3 1 13 ? *)"},
    ),
    Case(
        "cron day-of-week out of range",
        ("day-of-week '8'",),
        context={"scheduleExpression": "cron(0 3 ? * 8 *)"},
    ),
    Case(
        "rate(1 minutes)",
        ("scheduleExpression (-c)", "write 'rate(1 minute)'"),
        context={"scheduleExpression": "rate(1 minutes)"},
    ),
    Case(
        "rate(5 minute)",
        ("scheduleExpression (-c)", "write 'rate(5 minutes)'"),
        argv=plan("-c", "scheduleExpression=rate(5 minute)"),
    ),
    Case(
        "time zone localtime",
        ("scheduleTimezone (-c)", "IANA"),
        context={"scheduleTimezone": "localtime"},
    ),
    Case(
        "time zone Factory",
        ("scheduleTimezone (-c)", "IANA"),
        argv=plan("-c", "scheduleTimezone=Factory"),
    ),
    # Tracebacks before: now exit 2 with one line.
    Case(
        "logRetentionDays=²",
        ("logRetentionDays (-c)", "one of 1, 3"),
        argv=plan("-c", "logRetentionDays=²"),
    ),
    Case("synth logRetentionDays ²", ("logRetentionDays (-c)",), context={"logRetentionDays": "²"}),
    Case(
        "non-UTF-8 policy file",
        ("lifecyclePolicyFile (-c)", "latin1-policy.json", "not UTF-8"),
        argv=plan("-c", "lifecyclePolicyFile={tmp}/latin1-policy.json"),
    ),
    Case(
        "deeply nested cdk.json",
        ("nested.json", "nested too deeply"),
        argv=plan("--config", "{tmp}/nested.json"),
    ),
    Case(
        "deeply nested -c policy",
        ("lifecyclePolicy (-c)", "nested too deeply"),
        argv=plan("-c", "lifecyclePolicy=" + DEEP),
    ),
    Case(
        "deeply nested images file",
        ("nested-images.json", "nested too deeply"),
        argv=evaluate("nested-images.json"),
    ),
    Case(
        "imagePushedAt 1e20", ("imagePushedAt", "out of range"), argv=evaluate("images-1e20.json")
    ),
    Case(
        "imagePushedAt Infinity",
        ("imagePushedAt", "inf", "epoch seconds"),
        argv=evaluate("images-infinity.json"),
    ),
    Case(
        "imagePushedAt NaN",
        ("imagePushedAt", "nan", "epoch seconds"),
        argv=evaluate("images-nan.json"),
    ),
    Case(
        "imagePushedAt -1e11",
        ("imagePushedAt", "out of range"),
        argv=evaluate("images-negative.json"),
    ),
    Case(
        "imagePushedAt epoch ms",
        ("imagePushedAt", "epoch milliseconds", "1767225600"),
        argv=evaluate("images-millis.json"),
    ),
    # Errors point at the right place.
    Case(
        "-c value named as -c",
        ('keepTaggedImages (-c): got "abc"',),
        argv=plan("-c", "keepTaggedImages=abc"),
    ),
    Case(
        "cdk.json value named as cdk.json",
        ("keepTaggedImages ({tmp}/bad-value.json)", '"many"'),
        argv=plan("--config", "{tmp}/bad-value.json"),
    ),
    Case(
        "bad rule in a policy file",
        (
            "lifecyclePolicyFile (-c) '{tmp}/bad-rule-policy.json'",
            "rule 3 (rulePriority 3)",
            "countType",
        ),
        argv=plan("-c", "lifecyclePolicyFile={tmp}/bad-rule-policy.json"),
        never=("MARKER-", "xxxxxxxxxx"),
    ),
    Case(
        "wildcard extra references",
        ("extraImageReferences (-c)", "wildcards are not accepted"),
        argv=plan("-c", "extraImageReferences=s3://*/*"),
    ),
    Case(
        "synth wildcard key",
        ("extraImageReferences (-c)", "wildcards"),
        context={"extraImageReferences": "s3://configs/*"},
    ),
    Case(
        "synth wildcard ssm",
        ("extraImageReferences (-c)", "wildcards"),
        context={"extraImageReferences": "ssm:/refs/*"},
    ),
]


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """FILES and a copy of cdk.json in tmp_path; no AWS credentials reachable from the CLI."""
    for name, content in FILES.items():
        target = tmp_path / name
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    (tmp_path / "cdk.json").write_text(CDK_JSON.read_text(encoding="utf-8"), encoding="utf-8")
    for variable in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_in_one_line_naming_where_it_came_from(
    case: Case, files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    says = [text.replace("{tmp}", str(files)) for text in case.says]
    if case.argv:
        code = main([part.replace("{tmp}", str(files)) for part in case.argv])
        error = capsys.readouterr().err
        assert code == 2, error
    else:
        with pytest.raises(SettingsError) as raised:
            if case.cdk_json:
                cdk_json_context(files / case.cdk_json)
            else:
                build_app({**cdk_json_context(), **case.context})
        error = f"ecr-sweeper: {raised.value}\n"
    assert error.endswith("\n") and error.count("\n") == 1, f"not one line: {error!r}"
    assert "Traceback" not in error and len(error) < 1000
    for text in says:
        assert text in error
    for text in case.never:
        assert text not in error


def test_explicit_empty_lists_are_deliberate_choices() -> None:
    settings = Settings.from_context({"protectedTags": "[]", "excludeRepositories": []})
    assert settings.protected_tags == () and settings.exclude_repositories == ()
    with pytest.raises(SettingsError):
        Settings.from_context({"excludeRepositories": ""})


def test_cdk_context_keys_pass_and_nothing_else() -> None:
    cdk_keys = {
        "@aws-cdk/core:checkSecretUsage": True,
        "@aws-cdk/aws-elasticloadbalancingV2:albDualstackWithoutPublicIpv4SecurityGroup": True,
        "@aws-cdk-containers/ecs-service-extensions:enableDefaultLogDriver": True,
        "@aws-cdk/core:target-partitions": ["aws"],
        "aws:cdk:enable-path-metadata": True,
        "aws:cdk:version-reporting": False,
        "availability-zones:account=123456789012:region=eu-west-1": ["eu-west-1a"],
        "ssm:account=123456789012:parameterName=/x:region=eu-west-1": "v",
        "acknowledged-issue-numbers": [12345],
        "cli-telemetry": False,
    }
    assert Settings.from_context({**cdk_keys, "keepTaggedImages": 4}).keep_tagged_images == 4


def test_plan_warns_when_the_settings_are_too_large_for_the_lambda(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = [
        {
            "rulePriority": n,
            "description": "d" * 100,
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": [f"t{n}-*"],
                "countType": "imageCountMoreThan",
                "countNumber": 5,
            },
            "action": {"type": "expire"},
        }
        for n in range(1, 41)
    ]
    (files / "large.json").write_text(json.dumps({"rules": rules}))
    main(
        [
            "plan",
            "--config",
            str(files / "cdk.json"),
            "-c",
            f"lifecyclePolicyFile={files}/large.json",
        ]
    )
    error = capsys.readouterr().err
    assert "warning: `cdk deploy` would refuse this" in error and "4 KB" in error
    with pytest.raises(SettingsError, match="4 KB"):
        build_app({**cdk_json_context(), "lifecyclePolicy": json.dumps({"rules": rules})})


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_output_pipe_ends_quietly_not_with_a_traceback(
    files: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Unix rule (128 + SIGPIPE, nothing printed), as in every command
    (tests/integration/test_cli_signals.py)."""
    (files / "images.json").write_text(_images('"2026-01-01T00:00:00Z"'))
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    code = main([part.replace("{tmp}", str(files)) for part in evaluate("images.json")])
    assert code == 141
    assert capsys.readouterr().err == ""


def test_piping_into_head_ends_quietly_in_a_real_process(files: Path) -> None:
    """`ecr-sweeper evaluate ... | head -c 1`: a real pipe, closed after one byte."""
    details = [
        {
            "imageDigest": f"sha256:{n:064x}",
            "imageTags": [f"v{n}"],
            "imagePushedAt": 1_700_000_000 + n,
        }
        for n in range(3000)
    ]
    (files / "many.json").write_text(json.dumps({"imageDetails": details}))
    cli = Path(sys.executable).parent / "ecr-sweeper"
    command = [str(cli), *[p.replace("{tmp}", str(files)) for p in evaluate("many.json")]]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.read(1) == b"{"
        process.stdout.close()
        error = process.stderr.read().decode()
        code = process.wait(timeout=120)
    assert "Traceback" not in error and "Exception ignored" not in error
    assert error == ""
    assert code == 141
