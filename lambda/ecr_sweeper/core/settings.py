"""The one settings schema, validated at synth time (app.py), by the CLI, and at Lambda start.

Settings are flat camelCase keys in cdk.json context. `cdk deploy -c key=value` passes values as
strings, so every parser also accepts the string form. Every error names the key, where its value
came from, the value and what is accepted; all problems are reported at once.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ecr_sweeper.core import lifecycle, metrics_catalog
from ecr_sweeper.core.extra_references import location_problem

ENVIRONMENT_VARIABLE = "SWEEPER_SETTINGS"
"""The Lambda environment variable that carries the validated settings as JSON."""

_OWN_KEY = re.compile(r"^[a-z][A-Za-z0-9]*$")
"""Context keys of this shape are ours; CDK's own keys contain '@', ':', '/' or '-'."""

_CDK_KEY = re.compile(
    r"^(@aws-cdk(-[a-z0-9]+)*/[A-Za-z0-9.-]+:[A-Za-z0-9_.-]+"
    r"|aws:cdk:[A-Za-z0-9:._-]+|aws-cdk:[A-Za-z0-9:._-]+"
    r"|(ami|availability-zones|cc-api-provider|endpoint-service-availability-zones|hosted-zone"
    r"|key-provider|load-balancer|load-balancer-listener|plugin|security-group|ssm"
    r"|vpc-provider):\S+"
    r"|acknowledged-issue-numbers|cli-telemetry)$"
)
"""The context keys CDK itself uses, and nothing else: feature flags (`@aws-cdk/module:flag`,
also `@aws-cdk-containers/...`), the CLI's `aws:cdk:...` switches, the lookups context providers
cache in cdk.context.json (`availability-zones:account=...:region=...`), and the keys the CLI
writes for notices and telemetry. Any other key that isn't a setting is refused: a damaged one
(`"dryRun "`, `"Dry Run"`) would otherwise be dropped and the sweep run live."""

ENVIRONMENT_LIMIT_BYTES = 4096
"""Lambda rejects a function whose environment variables (names plus values) exceed 4 KB."""

LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_MAX_CONCURRENCY = 32
"""Measured with `make bench` (200 x 500 images at 50 ms a call, alternating runs): 16 workers
took 10.0-11.3 s, with the calls in flight capped below what the latency needs; 24 to 64 took
7.6-9.5 s, and 32 halves down as well under 20% throttling (0 failures). Beyond 32 the gain is
within noise, and a higher cap only gives the limiter further to fall when ECR throttles."""
MAX_CONCURRENCY_LIMIT = 64
FAN_OUT_BATCH_SIZE_LIMIT = 1000
FAN_OUT_CONCURRENCY_LIMIT = 1000
"""A Distributed Map runs at most 10,000 child executions at once; 1000 keeps the account's
ECR throttling the bound, not the map."""
_CRON = re.compile(r"^cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)$")
_RATE = re.compile(r"^rate\(([1-9][0-9]{0,8}) (minutes?|hours?|days?)\)$")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_NOT_ZONES = frozenset({"Factory", "localtime", "posixrules", "leapseconds", "leap-seconds.list"})
"""Files the tz database ships that are no time zone EventBridge Scheduler accepts."""
_NAMESPACE = re.compile(r"^(?!AWS/)[A-Za-z0-9._/#:-]{1,255}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_REPOSITORY_PATTERN = re.compile(r"^[a-z0-9._/*?-]+$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")
_ACCOUNT = re.compile(r"^[0-9]{12}$")
_ROLE_NAME = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,64}$")
_TAG_PATTERN = re.compile(r"^[A-Za-z0-9_.*?-]+$")
_KMS_KEY_ARN = re.compile(
    r"^arn:aws(-[a-z]+)*:kms:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:key/"
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$"
)


EXPIRED_IMAGE_ACTIONS = ("delete", "archive")
ARCHIVE_STORAGE_PRICE_PER_GB_MONTH = 0.10
"""ECR's archive storage class, first 150 TB a month (0.07 above), in us-east-1 and
ap-northeast-1 as checked in 2026: the same as standard storage. See README, "Settings"."""


class SettingsError(ValueError):
    """Settings that can't be used; `problems` lists every bad key with what is accepted."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        if len(problems) == 1:
            super().__init__(f"invalid settings: {problems[0]}")
        else:
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


def _patterns(
    shape: re.Pattern[str], what: str, *, empty: str | None
) -> Callable[[Any], tuple[str, ...]]:
    """`empty` says what an explicit `[]` means, or None if no list may be empty. A bare empty
    string (`-c protectedTags=`, often an unset shell variable) is always refused."""
    accepted = (
        f"a list of {what} patterns ('*' and '?' wildcards), as a JSON array or comma-separated"
    )

    def parse(value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except (json.JSONDecodeError, RecursionError) as error:
                    raise _Invalid(accepted) from error
            else:
                value = [part.strip() for part in text.split(",") if part.strip()]
                if not value:
                    raise _Invalid(
                        f"{accepted}; an empty value is refused"
                        + (f" (write [] for {empty})" if empty else "")
                    )
        if not isinstance(value, list) or not all(
            isinstance(item, str) and shape.fullmatch(item) for item in value
        ):
            raise _Invalid(accepted)
        if not value and empty is None:
            raise _Invalid(f"{accepted}; an empty list would sweep nothing")
        return tuple(value)

    return parse


_SCHEDULE_ACCEPTED = (
    "an EventBridge Scheduler expression: 'cron(minutes hours day-of-month month day-of-week "
    "year)' with six fields and '?' in exactly one of the two day fields, e.g. "
    "'cron(0 3 * * ? *)', or 'rate(VALUE UNIT)' with a singular unit for 1 and a plural one "
    "otherwise, e.g. 'rate(1 day)', 'rate(12 hours)'"
)


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
    if not isinstance(value, str):
        raise _Invalid(_SCHEDULE_ACCEPTED)
    text = value.strip()
    rate = _RATE.fullmatch(text)
    if rate:
        number, unit = rate.groups()
        if unit.endswith("s") == (number == "1"):
            fixed = unit.removesuffix("s") if number == "1" else f"{unit}s"
            raise _Invalid(f"{_SCHEDULE_ACCEPTED} (write 'rate({number} {fixed})')")
        return text
    cron = _CRON.fullmatch(text)
    if not cron:
        raise _Invalid(_SCHEDULE_ACCEPTED)
    problem = cron_problem(cron.groups())
    if problem:
        raise _Invalid(f"{_SCHEDULE_ACCEPTED} ({problem})")
    return text


def cron_problem(fields: Sequence[str]) -> str | None:
    """Why six cron fields are not what EventBridge Scheduler accepts, or None.

    The grammar of the EventBridge Scheduler user guide ("Schedule types"): `, - * /` in every
    field, `?` only in one day field, `L` and `W` in day-of-month, `L` and `#` in day-of-week.
    """
    minutes, hours, day_of_month, month, day_of_week, year = fields
    if (day_of_month == "?") == (day_of_week == "?"):
        return "one of day-of-month and day-of-week must be '?', not both"
    checks = (
        ("minutes", minutes, 0, 59, ()),
        ("hours", hours, 0, 23, ()),
        ("month", month, 1, 12, _MONTHS),
        ("year", year, 1970, 2199, ()),
    )
    for name, text, low, high, names in checks:
        if not _cron_list(text, low, high, names):
            return f"{name} {text!r}: expected {low}-{high}" + (" or JAN-DEC" if names else "")
    if day_of_month != "?" and not (
        day_of_month in ("L", "LW")
        or re.fullmatch(r"([1-9]|[12][0-9]|3[01])W", day_of_month)
        or _cron_list(day_of_month, 1, 31, ())
    ):
        return f"day-of-month {day_of_month!r}: expected 1-31, L, LW, 1W-31W or '?'"
    if day_of_week != "?" and not (
        re.fullmatch(r"([1-7]|SUN|MON|TUE|WED|THU|FRI|SAT)(L|#[1-5])", day_of_week)
        or day_of_week == "L"
        or _cron_list(day_of_week, 1, 7, _WEEKDAYS)
    ):
        return f"day-of-week {day_of_week!r}: expected 1-7 or SUN-SAT, L, 6L, 6#3 or '?'"
    return None


def _cron_list(text: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    """A comma-separated list of `*`, values, ranges `a-b` and steps `x/n`, all in range."""

    def number(part: str) -> int | None:
        if part.upper() in names:
            return names.index(part.upper()) + low
        if re.fullmatch(r"[0-9]{1,4}", part) and low <= int(part) <= high:
            return int(part)
        return None

    for item in text.split(","):
        base, slash, step = item.partition("/")
        if slash and not (re.fullmatch(r"[0-9]{1,4}", step) and 1 <= int(step) <= high):
            return False
        if base == "*":
            continue
        start, dash, end = base.partition("-")
        first = number(start)
        if first is None or (dash and number(end) is None):
            return False
    return True


def _timezone(value: Any) -> str:
    accepted = (
        "an IANA time zone name such as 'UTC' or 'Europe/Berlin' (not 'localtime' or 'Factory')"
    )
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(accepted)
    if value in _NOT_ZONES or value.startswith(("posix/", "right/")):
        raise _Invalid(accepted)
    known = zoneinfo.available_timezones()
    if known and value not in known and value != "UTC":
        raise _Invalid(accepted)
    if not known and not re.fullmatch(r"[A-Za-z_]+(/[A-Za-z0-9_+-]+)*", value):
        raise _Invalid(accepted)
    return value


def _choice(*choices: Any) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if isinstance(value, str) and re.fullmatch(r"[0-9]+", value.strip()):
            value = int(value.strip())
        if isinstance(value, str):
            value = value.strip().upper() if all(isinstance(c, str) for c in choices) else value
        if isinstance(value, bool) or value not in choices:
            raise _Invalid("one of " + ", ".join(str(c) for c in choices))
        return value

    return parse


def _lower_choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or value.strip().lower() not in choices:
            raise _Invalid("one of " + ", ".join(choices))
        return value.strip().lower()

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
        ascii_number = not isinstance(value, bool) and (
            not isinstance(value, str) or value.isascii()
        )
        number = float(value) if ascii_number else -1.0
    except (TypeError, ValueError):
        number = -1.0
    if not math.isfinite(number) or not 0 < number <= 100:
        raise _Invalid("a price in USD per GB-month, greater than 0 and at most 100, e.g. 0.10")
    return number


def _location(value: Any) -> str:
    problem = location_problem(value.strip()) if isinstance(value, str) else "expected a string"
    if problem:
        raise _Invalid(f"s3://BUCKET/KEY or ssm:/PARAMETER/NAME ({problem})")
    return str(value).strip()


def _policy(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise _Invalid(f"a lifecycle policy as a JSON object ({error})") from error
        except RecursionError:
            raise _Invalid("a lifecycle policy as a JSON object (nested too deeply)") from None
    try:
        policy = lifecycle.parse_policy(value)
    except lifecycle.PolicyError as error:
        raise _Invalid(f"a valid lifecycle policy: {error}") from error
    except RecursionError:
        raise _Invalid("a valid lifecycle policy (this one is nested too deeply)") from None
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
    protect_previous_task_definitions: int = 1
    protect_scheduled_task_images: bool = True
    protect_batch_images: bool = True
    protect_lambda_images: bool = True
    extra_image_references: str | None = None
    extra_image_references_kms_key_arn: str | None = None
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
    expired_image_action: str = "delete"
    archive_retention_days: int | None = None
    archive_storage_price_per_gb_month: float = ARCHIVE_STORAGE_PRICE_PER_GB_MONTH
    native_lifecycle_policy: dict[str, Any] | None = None
    sweep_images: bool = True
    fan_out: bool = False
    fan_out_batch_size: int = 50
    fan_out_concurrency: int = 10
    regions: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    cross_account_role_name: str = "EcrSweeperMember"

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], origins: Mapping[str, str] | None = None
    ) -> Settings:
        """Validate camelCase keys (all of them must be ours) into Settings.

        `origins` names where each key's value came from (`-c`, `cdk.json`), for the errors.
        """
        problems: list[str] = []
        parsed: dict[str, Any] = {}
        for key, value in values.items():
            spec = _SPECS.get(key)
            if spec is None:
                problems.append(_from(key, origins) + unknown_key_message(key).removeprefix(key))
                continue
            try:
                parsed[spec.attribute] = spec.parse(value)
            except _Invalid as error:
                problems.append(f"{_from(key, origins)}: got {shown(value)}; expected {error}")
        if parsed.get("extra_image_references_kms_key_arn") and not parsed.get(
            "extra_image_references"
        ):
            problems.append(
                "extraImageReferencesKmsKeyArn: only used to read extraImageReferences, which is "
                "not set; set both, or neither"
            )
        if problems:
            raise SettingsError(problems)
        settings = cls(**parsed)
        problems = settings.combination_problems()
        if problems:
            raise SettingsError(problems)
        return settings

    @property
    def archives(self) -> bool:
        """Whether the sweeper moves images to the archive tier (and needs the IAM grant)."""
        return self.expired_image_action == "archive"

    def combination_problems(self) -> list[str]:
        """Settings that are each valid but don't go together."""
        problems: list[str] = []
        if not self.sweep_images and self.native_lifecycle_policy is None:
            problems.append(
                "sweepImages: false with no nativeLifecyclePolicy would make a run that does "
                "nothing; set nativeLifecyclePolicy (or nativeLifecyclePolicyFile), or leave "
                "sweepImages true"
            )
        if self.archive_retention_days is not None and not self.archives:
            problems.append(
                f"archiveRetentionDays: got {self.archive_retention_days}; it applies only with "
                'expiredImageAction "archive" (with "delete", archived images are left alone); '
                "set expiredImageAction to archive or archiveRetentionDays to null"
            )
        if self.lifecycle_policy is None:
            return problems
        rules = lifecycle.parse_policy(self.lifecycle_policy).rules
        transition = next((rule for rule in rules if rule.action == "transition"), None)
        if transition is not None and not self.archives:
            problems.append(
                f"lifecyclePolicy: {transition.label} transitions images to archive; set "
                'expiredImageAction to "archive" (that grants ecr:UpdateImageStorageClass)'
            )
        archive_rule = next((r for r in rules if r.selection.storage_class == "archive"), None)
        if archive_rule is not None and self.archive_retention_days is not None:
            problems.append(
                f"archiveRetentionDays and lifecyclePolicy: {archive_rule.label} already expires "
                "archived images; give one of them, not both"
            )
        return problems

    @classmethod
    def from_context(
        cls,
        context: Mapping[str, Any],
        base_dir: Path | None = None,
        origins: Mapping[str, str] | None = None,
    ) -> Settings:
        """Validate the settings among CDK context keys; reads `lifecyclePolicyFile` if given.

        Every key must be a setting or one of CDK's own (see `_CDK_KEY`).
        """
        own = {key: value for key, value in context.items() if _OWN_KEY.fullmatch(key)}
        foreign = [
            foreign_key_message(key, origins)
            for key in context
            if not _OWN_KEY.fullmatch(key) and not _CDK_KEY.fullmatch(key)
        ]
        try:
            settings = cls._from_own(own, base_dir, origins)
        except SettingsError as error:
            raise SettingsError([*foreign, *error.problems]) from None
        if foreign:
            raise SettingsError(foreign)
        return settings

    @classmethod
    def _from_own(
        cls, own: dict[str, Any], base_dir: Path | None, origins: Mapping[str, str] | None
    ) -> Settings:
        for file_key, setting in _POLICY_FILES.items():
            policy_file = own.pop(file_key, None)
            if policy_file in (None, ""):
                continue
            if own.get(setting) not in (None, ""):
                raise SettingsError([f"{setting} and {file_key}: give one of them, not both"])
            where = f"{_from(file_key, origins)} {str(policy_file)!r}"
            document = _read_policy_file(str(policy_file), base_dir or Path.cwd(), where)
            try:
                own[setting] = _policy(document)
            except _Invalid as error:
                raise SettingsError([f"{where}: expected {error}"]) from None
        return cls.from_mapping(own, origins)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        """Read the settings the stack put in the Lambda environment."""
        try:
            values = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as error:
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
            policy = lifecycle.parse_policy(self.lifecycle_policy)
        else:
            policy = lifecycle.simple_policy(self.keep_tagged_images, self.untagged_grace_days)
        if self.archives:
            return lifecycle.archiving(policy, self.archive_retention_days)
        return policy


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
    "protected_tags": (
        _patterns(_TAG_PATTERN, "tag", empty="no protected tag"),
        "images with a matching tag are kept ([] for none)",
    ),
    "include_repositories": (
        _patterns(_REPOSITORY_PATTERN, "repository name", empty=None),
        "repositories swept",
    ),
    "exclude_repositories": (
        _patterns(_REPOSITORY_PATTERN, "repository name", empty="no exclusion"),
        "repositories never swept ([] for none)",
    ),
    "minimum_age_days": (_whole_number(0, 3650), "images younger than this are never deleted"),
    "protect_ecs_images": (_boolean, "keep images that ECS tasks and services use"),
    "protect_previous_task_definitions": (
        _whole_number(0, 100),
        "keep the images of this many ACTIVE revisions older than each one an ECS service runs, "
        "in its family (rollback targets); 0 turns it off",
    ),
    "protect_scheduled_task_images": (
        _boolean,
        "keep images of ECS tasks that EventBridge rules and Scheduler schedules start",
    ),
    "protect_batch_images": (_boolean, "keep images of ACTIVE AWS Batch job definitions"),
    "protect_lambda_images": (_boolean, "keep images that Lambda functions use"),
    "extra_image_references": (
        _optional(_location),
        "s3://BUCKET/KEY or ssm:/NAME of a JSON list of more image references to keep",
    ),
    "extra_image_references_kms_key_arn": (
        _optional(
            _matching(
                _KMS_KEY_ARN,
                "a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/KEY-ID; not an alias), or null",
            )
        ),
        "KMS key that encrypts the extra references document; the function may decrypt with it",
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
    "expired_image_action": (
        _lower_choice(*EXPIRED_IMAGE_ACTIONS),
        "what happens to what the policy expires: delete it, or archive it (reversible)",
    ),
    "archive_retention_days": (
        _optional(_whole_number(lifecycle.ARCHIVE_MINIMUM_DAYS, 36500)),
        "with archive: delete archived images this many days after archiving (null: never)",
    ),
    "archive_storage_price_per_gb_month": (
        _price,
        "USD per GB-month of the archive storage class, for the savings estimate",
    ),
    "native_lifecycle_policy": (
        _optional(_policy),
        "an ECR lifecycle policy the nightly run puts on every selected repository "
        "(where it differs)",
    ),
    "sweep_images": (
        _boolean,
        "false: the run deletes no image itself (it only enforces nativeLifecyclePolicy)",
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
NATIVE_POLICY_FILE_KEY = "nativeLifecyclePolicyFile"
_POLICY_FILES = {
    POLICY_FILE_KEY: "lifecyclePolicy",
    NATIVE_POLICY_FILE_KEY: "nativeLifecyclePolicy",
}
"""Each file key and the setting its file fills in."""
SETTING_KEYS: tuple[str, ...] = (*_SPECS, POLICY_FILE_KEY, NATIVE_POLICY_FILE_KEY)


def _normalized(key: str) -> str:
    return re.sub(r"[\s_-]+", "", key).casefold()


_NORMALIZED = {_normalized(key): key for key in SETTING_KEYS}
"""dry_run, "dryRun ", "Dry Run" and DryRun: each means dryRun, and is refused with that hint."""


def _from(key: str, origins: Mapping[str, str] | None) -> str:
    """A key as errors name it: with where its value came from when that is known."""
    origin = origins.get(key) if origins else None
    return f"{key} ({origin})" if origin else key


def shown(value: Any, limit: int = 80) -> str:
    """A value as errors show it: JSON, cut at `limit` characters, never a traceback."""
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (RecursionError, ValueError):
        return "a value nested too deeply to show"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def foreign_key_message(key: str, origins: Mapping[str, str] | None = None) -> str:
    """A context key that is neither a setting nor CDK's: say which setting it looks like."""
    plain = key == key.strip() and key.isprintable() and " " not in key and key != ""
    named = (key if plain else shown(key)) + (
        f" ({origins[key]})" if origins and key in origins else ""
    )
    exact = _NORMALIZED.get(_normalized(key))
    if exact:
        return f"{named}: settings are camelCase; did you mean {exact!r}?"
    close = difflib.get_close_matches(_normalized(key), list(_NORMALIZED), n=1)
    hint = f"; did you mean {_NORMALIZED[close[0]]!r}?" if close else ""
    return (
        f"{named}: neither an ecr-sweeper setting nor a CDK context key (@aws-cdk/module:flag, "
        f"aws:cdk:..., lookups such as availability-zones:...){hint}"
    )


def describe_settings() -> list[tuple[str, str]]:
    """(key, help) for every setting, for docs and `--help`."""
    described = [(spec.key, spec.help) for spec in _SPECS.values()]
    described.append((POLICY_FILE_KEY, "path of a lifecycle policy JSON file, read at synth time"))
    described.append(
        (NATIVE_POLICY_FILE_KEY, "path of a nativeLifecyclePolicy JSON file, read at synth time")
    )
    return described


def unknown_key_message(key: str) -> str:
    """'KEY: unknown setting (did you mean ...?); accepted settings are ...'"""
    close = difflib.get_close_matches(key, SETTING_KEYS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{key}: unknown setting{hint}; accepted settings are {', '.join(SETTING_KEYS)}"


def _read_policy_file(name: str, base_dir: Path, where: str) -> Any:
    path = Path(name) if Path(name).is_absolute() else base_dir / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SettingsError([f"{where}: can't read it ({error.strerror or error})"]) from None
    except UnicodeDecodeError as error:
        raise SettingsError(
            [f"{where}: not UTF-8 text (byte {error.start}); save it as UTF-8 JSON"]
        ) from None
    except json.JSONDecodeError as error:
        raise SettingsError([f"{where}: not valid JSON ({error})"]) from None
    except RecursionError:
        raise SettingsError([f"{where}: JSON nested too deeply to be a lifecycle policy"]) from None


DEPLOY_TIME_ENVIRONMENT_BYTES = 24 + 128
"""Room kept for what the stack adds at deploy time: SWEEPER_STATE_PARAMETER and the cursor
parameter's generated name (CFN-<logical id>-<suffix>, under 128 bytes)."""


def function_environment(settings: Settings) -> dict[str, str]:
    """The Lambda environment: validated settings plus what Powertools reads at import time."""
    return {
        ENVIRONMENT_VARIABLE: settings.to_json(),
        "POWERTOOLS_SERVICE_NAME": metrics_catalog.SERVICE,
        "POWERTOOLS_METRICS_NAMESPACE": settings.metrics_namespace,
        "POWERTOOLS_LOG_LEVEL": settings.log_level,
    }


def environment_size(environment: Mapping[str, str]) -> int:
    """Bytes Lambda counts against its 4 KB limit: every name and value, UTF-8 encoded."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in environment.items())


def environment_problem(settings: Settings) -> str | None:
    """Why these settings can't be deployed (synth fails on it; `plan` warns), or None."""
    size = environment_size(function_environment(settings)) + DEPLOY_TIME_ENVIRONMENT_BYTES
    if size <= ENVIRONMENT_LIMIT_BYTES:
        return None
    return (
        f"lifecyclePolicy: the settings need {size} bytes of Lambda environment, over its "
        f"{ENVIRONMENT_LIMIT_BYTES}-byte (4 KB) limit; shorten the lifecycle policy "
        "(fewer rules, shorter descriptions or tag pattern lists)"
    )
