"""The one settings schema, validated at synth time (app.py), by the CLI, and at Lambda start.

Settings are flat camelCase keys in cdk.json context. `cdk deploy -c key=value` passes values as
strings, so every parser also accepts the string form. Every error names the key, the value and
what is accepted; all problems are reported at once.
"""

from __future__ import annotations

import difflib
import json
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ecr_sweeper import lifecycle
from ecr_sweeper.extra_references import location_problem

ENVIRONMENT_VARIABLE = "SWEEPER_SETTINGS"
"""The Lambda environment variable that carries the validated settings as JSON."""

_OWN_KEY = re.compile(r"^[a-z][A-Za-z0-9]*$")
"""Context keys of this shape are ours; CDK's own keys contain '@', ':', '/' or '-'."""

LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_MAX_CONCURRENCY = 16
"""Measured with `make bench`: at 50 ms a call, 16 workers sweep 200 x 500 images in a few seconds
and halve down gracefully under throttling; more gains little and only invites throttling."""
MAX_CONCURRENCY_LIMIT = 64
FAN_OUT_BATCH_SIZE_LIMIT = 1000
FAN_OUT_CONCURRENCY_LIMIT = 1000
"""A Distributed Map runs at most 10,000 child executions at once; 1000 keeps the account's
ECR throttling the bound, not the map."""
_SCHEDULE = re.compile(
    r"^(cron\(\S+ \S+ \S+ \S+ \S+ \S+\)|rate\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\))$"
)
_NAMESPACE = re.compile(r"^(?!AWS/)[A-Za-z0-9._/#:-]{1,255}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_REPOSITORY_PATTERN = re.compile(r"^[a-z0-9._/*?-]+$")
_TAG_PATTERN = re.compile(r"^[A-Za-z0-9_.*?-]+$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")
_ACCOUNT = re.compile(r"^[0-9]{12}$")
_ROLE_NAME = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,64}$")


class SettingsError(ValueError):
    """Settings that can't be used; `problems` lists every bad key with what is accepted."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))


class _Invalid(Exception):
    """Raised by a parser; the message says what is accepted."""


def _whole_number(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, str) and re.fullmatch(r"[0-9]+", value.strip()):
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _Invalid(f"a whole number from {low} to {high}")
        return value

    return parse


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _Invalid("true or false")


def _patterns(shape: re.Pattern[str], what: str) -> Callable[[Any], tuple[str, ...]]:
    accepted = (
        f"a list of {what} patterns ('*' and '?' wildcards), as a JSON array or comma-separated"
    )

    def parse(value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as error:
                    raise _Invalid(accepted) from error
            else:
                value = [part.strip() for part in text.split(",") if part.strip()]
        if not isinstance(value, list) or not all(
            isinstance(item, str) and shape.fullmatch(item) for item in value
        ):
            raise _Invalid(accepted)
        return tuple(value)

    return parse


def _list_of(shape: re.Pattern[str], what: str) -> Callable[[Any], tuple[str, ...]]:
    accepted = f"a list of {what}, as a JSON array or comma-separated, without repeats"

    def parse(value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            text = value.strip()
            try:
                value = (
                    json.loads(text)
                    if text.startswith("[")
                    else [p.strip() for p in text.split(",") if p.strip()]
                )
            except json.JSONDecodeError as error:
                raise _Invalid(accepted) from error
        if (
            not isinstance(value, list)
            or not all(isinstance(item, str) and shape.fullmatch(item) for item in value)
            or len(set(value)) != len(value)
        ):
            raise _Invalid(accepted)
        return tuple(value)

    return parse


def _schedule(value: Any) -> str:
    if not isinstance(value, str) or not _SCHEDULE.fullmatch(value.strip()):
        raise _Invalid(
            "an EventBridge Scheduler expression: 'cron(minutes hours day-of-month month "
            "day-of-week year)' with six fields, e.g. 'cron(0 3 * * ? *)', or 'rate(1 day)'"
        )
    return value.strip()


def _timezone(value: Any) -> str:
    accepted = "an IANA time zone name such as 'UTC' or 'Europe/Berlin'"
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(accepted)
    known = zoneinfo.available_timezones()
    if known and value not in known and value != "UTC":
        raise _Invalid(accepted)
    if not known and not re.fullmatch(r"[A-Za-z_]+(/[A-Za-z0-9_+-]+)*", value):
        raise _Invalid(accepted)
    return value


def _choice(*choices: Any) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, str):
            value = value.strip().upper() if all(isinstance(c, str) for c in choices) else value
        if isinstance(value, bool) or value not in choices:
            raise _Invalid("one of " + ", ".join(str(c) for c in choices))
        return value

    return parse


def _matching(shape: re.Pattern[str], accepted: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or not shape.fullmatch(value.strip()):
            raise _Invalid(accepted)
        return value.strip()

    return parse


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse_optional(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip() in ("", "none", "null")):
            return None
        return parse(value)

    return parse_optional


def _price(value: Any) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError):
        number = -1.0
    if not 0 < number <= 100:
        raise _Invalid("a price in USD per GB-month, greater than 0 and at most 100, e.g. 0.10")
    return number


def _location(value: Any) -> str:
    problem = location_problem(value) if isinstance(value, str) else "expected a string"
    if problem:
        raise _Invalid(f"s3://BUCKET/KEY or ssm:/PARAMETER/NAME ({problem})")
    return str(value).strip()


def _policy(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise _Invalid(f"a lifecycle policy as a JSON object ({error})") from error
    try:
        policy = lifecycle.parse_policy(value)
    except lifecycle.PolicyError as error:
        raise _Invalid(f"a valid lifecycle policy: {error}") from error
    return lifecycle.policy_document(policy)


@dataclass(frozen=True)
class Settings:
    """Validated settings. Field names are the snake_case form of the cdk.json keys."""

    keep_tagged_images: int = 10
    untagged_grace_days: int = 1
    protected_tags: tuple[str, ...] = ("latest",)
    include_repositories: tuple[str, ...] = ("*",)
    exclude_repositories: tuple[str, ...] = ()
    minimum_age_days: int = 0
    protect_ecs_images: bool = True
    protect_lambda_images: bool = True
    extra_image_references: str | None = None
    lifecycle_policy: dict[str, Any] | None = None
    dry_run: bool = False
    schedule_expression: str = "cron(0 3 * * ? *)"
    schedule_timezone: str = "UTC"
    log_retention_days: int = 90
    log_level: str = "INFO"
    function_timeout_seconds: int = 900
    function_memory_mb: int = 1024
    metrics_namespace: str = "EcrSweeper"
    alarm_email: str | None = None
    storage_price_per_gb_month: float = 0.10
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    fan_out: bool = False
    fan_out_batch_size: int = 50
    fan_out_concurrency: int = 10
    regions: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    cross_account_role_name: str = "EcrSweeperMember"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Validate camelCase keys (all of them must be ours) into Settings."""
        problems: list[str] = []
        parsed: dict[str, Any] = {}
        for key, value in values.items():
            spec = _SPECS.get(key)
            if spec is None:
                problems.append(unknown_key_message(key))
                continue
            try:
                parsed[spec.attribute] = spec.parse(value)
            except _Invalid as error:
                problems.append(f"{key}: got {json.dumps(value, default=str)}; expected {error}")
        if problems:
            raise SettingsError(problems)
        return cls(**parsed)

    @classmethod
    def from_context(cls, context: Mapping[str, Any], base_dir: Path | None = None) -> Settings:
        """Validate the settings among CDK context keys; reads `lifecyclePolicyFile` if given."""
        own = {key: value for key, value in context.items() if _OWN_KEY.fullmatch(key)}
        misspelled = [
            f"{key}: settings are camelCase; did you mean {_NORMALIZED[_normalized(key)]!r}?"
            for key in context
            if not _OWN_KEY.fullmatch(key) and _normalized(key) in _NORMALIZED
        ]
        if misspelled:
            raise SettingsError(misspelled)
        policy_file = own.pop(POLICY_FILE_KEY, None)
        if policy_file not in (None, ""):
            if own.get("lifecyclePolicy") not in (None, ""):
                raise SettingsError(
                    [f"lifecyclePolicy and {POLICY_FILE_KEY}: give one of them, not both"]
                )
            own["lifecyclePolicy"] = _read_policy_file(str(policy_file), base_dir or Path.cwd())
        return cls.from_mapping(own)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        """Read the settings the stack put in the Lambda environment."""
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise SettingsError([f"{ENVIRONMENT_VARIABLE}: not valid JSON ({error})"]) from error
        if not isinstance(values, dict):
            raise SettingsError([f"{ENVIRONMENT_VARIABLE}: expected a JSON object of settings"])
        return cls.from_mapping(values)

    def to_json(self) -> str:
        """Compact JSON of every setting under its cdk.json key; `from_json` reads it back."""
        values = {spec.key: getattr(self, spec.attribute) for spec in _SPECS.values()}
        return json.dumps(values, separators=(",", ":"), sort_keys=True)

    def policy(self) -> lifecycle.LifecyclePolicy:
        """The lifecycle policy in force: the one given, or the simple settings compiled."""
        if self.lifecycle_policy is not None:
            return lifecycle.parse_policy(self.lifecycle_policy)
        return lifecycle.simple_policy(self.keep_tagged_images, self.untagged_grace_days)


@dataclass(frozen=True)
class _Spec:
    key: str
    attribute: str
    parse: Callable[[Any], Any]
    help: str


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_PARSERS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "keep_tagged_images": (_whole_number(1, 10000), "newest tagged images kept per repository"),
    "untagged_grace_days": (_whole_number(1, 3650), "days an untagged image is kept"),
    "protected_tags": (_patterns(_TAG_PATTERN, "tag"), "images with a matching tag are kept"),
    "include_repositories": (
        _patterns(_REPOSITORY_PATTERN, "repository name"),
        "repositories swept",
    ),
    "exclude_repositories": (
        _patterns(_REPOSITORY_PATTERN, "repository name"),
        "repositories never swept",
    ),
    "minimum_age_days": (_whole_number(0, 3650), "images younger than this are never deleted"),
    "protect_ecs_images": (_boolean, "keep images that ECS tasks and services use"),
    "protect_lambda_images": (_boolean, "keep images that Lambda functions use"),
    "extra_image_references": (
        _optional(_location),
        "s3://BUCKET/KEY or ssm:/NAME of a JSON list of more image references to keep",
    ),
    "lifecycle_policy": (
        _optional(_policy),
        "an ECR lifecycle policy; replaces keepTaggedImages and untaggedGraceDays",
    ),
    "dry_run": (_boolean, "plan and report, delete nothing"),
    "schedule_expression": (_schedule, "when the sweep runs"),
    "schedule_timezone": (_timezone, "time zone of the schedule"),
    "log_retention_days": (_choice(*LOG_RETENTION_DAYS), "days the function's logs are kept"),
    "log_level": (_choice(*LOG_LEVELS), "the function's log level"),
    "function_timeout_seconds": (_whole_number(60, 900), "the Lambda timeout"),
    "function_memory_mb": (_whole_number(128, 10240), "the Lambda memory size"),
    "metrics_namespace": (
        _matching(_NAMESPACE, "a CloudWatch namespace: 1-255 of A-Z a-z 0-9 . _ / # : -, not AWS/"),
        "CloudWatch metrics namespace",
    ),
    "alarm_email": (
        _optional(_matching(_EMAIL, "an email address, or null for no subscription")),
        "email subscribed to the alarm topic",
    ),
    "storage_price_per_gb_month": (_price, "USD per GB-month, for the savings estimate"),
    "max_concurrency": (
        _whole_number(1, MAX_CONCURRENCY_LIMIT),
        "ECR calls in flight at once (repositories and delete batches in parallel)",
    ),
    "fan_out": (_boolean, "sweep through a Step Functions Distributed Map instead of one Lambda"),
    "fan_out_batch_size": (
        _whole_number(1, FAN_OUT_BATCH_SIZE_LIMIT),
        "repositories per child execution of the fan-out",
    ),
    "fan_out_concurrency": (
        _whole_number(1, FAN_OUT_CONCURRENCY_LIMIT),
        "child executions of the fan-out running at once (the Map's MaxConcurrency)",
    ),
    "regions": (
        _list_of(_REGION, "AWS regions such as us-east-1"),
        "regions swept from one deployment (default: the deployment's own region)",
    ),
    "accounts": (
        _list_of(_ACCOUNT, "12-digit AWS account ids"),
        "accounts swept through crossAccountRoleName (default: the deployment's own account)",
    ),
    "cross_account_role_name": (
        _matching(_ROLE_NAME, "an IAM role name: 1-64 of A-Z a-z 0-9 + = , . @ _ -"),
        "the role the sweeper assumes in each of `accounts`",
    ),
}
_SPECS: dict[str, _Spec] = {
    _camel(f.name): _Spec(_camel(f.name), f.name, *_PARSERS[f.name]) for f in fields(Settings)
}
POLICY_FILE_KEY = "lifecyclePolicyFile"
SETTING_KEYS: tuple[str, ...] = (*_SPECS, POLICY_FILE_KEY)


def _normalized(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


_NORMALIZED = {_normalized(key): key for key in SETTING_KEYS}
"""dry_run, dry-run and DryRun would otherwise be taken for CDK's keys and silently ignored."""


def describe_settings() -> list[tuple[str, str]]:
    """(key, help) for every setting, for docs and `--help`."""
    described = [(spec.key, spec.help) for spec in _SPECS.values()]
    described.append((POLICY_FILE_KEY, "path of a lifecycle policy JSON file, read at synth time"))
    return described


def unknown_key_message(key: str) -> str:
    """'KEY: unknown setting (did you mean ...?); accepted settings are ...'"""
    close = difflib.get_close_matches(key, SETTING_KEYS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{key}: unknown setting{hint}; accepted settings are {', '.join(SETTING_KEYS)}"


def _read_policy_file(name: str, base_dir: Path) -> Any:
    path = Path(name) if Path(name).is_absolute() else base_dir / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SettingsError(
            [f"{POLICY_FILE_KEY}: can't read {name!r} ({error.strerror})"]
        ) from error
    except json.JSONDecodeError as error:
        raise SettingsError([f"{POLICY_FILE_KEY}: {name!r} is not valid JSON ({error})"]) from error
