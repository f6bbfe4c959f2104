"""The value types of the settings: pydantic types plus what pydantic has no word for.

`cdk deploy -c key=value` passes values as strings, so each type's before-validator also takes
the string form ("true", "10", "a,b", a JSON array). `Accepts` says in the errors what a type
accepts; a validator that knows better raises `Refused(...)` with its own words.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    Strict,
    StringConstraints,
    ValidationInfo,
)

from ecr_sweeper.core import lifecycle
from ecr_sweeper.core.extra_references import location_problem

LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
EXPIRED_IMAGE_ACTIONS = ("delete", "archive")


class Accepts:
    """Annotated metadata: what the type accepts, as errors say it."""

    def __init__(self, text: str) -> None:
        self.text = text


class Refused(ValueError):
    """Raised by a validator that knows better than `Accepts` what is accepted."""

    def __init__(self, accepted: str) -> None:
        super().__init__(f"expected {accepted}")
        self.accepted = accepted


def _whole(value: Any) -> Any:
    """'10' and ' 10 ' are 10; True is no number (the strict type refuses what is left)."""
    if isinstance(value, bool):
        raise ValueError("a boolean")
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value.strip()):
        return int(value.strip())
    return value


def _boolean(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def _price(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a boolean")
    if isinstance(value, str) and value.isascii():
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _upper(value: Any) -> Any:
    value = _whole(value)
    return value.strip().upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _blank_is_none(value: Any) -> Any:
    if isinstance(value, str) and value.strip() in ("", "none", "null"):
        return None
    return _stripped(value)


def _not_aws(value: str) -> str:
    if value.startswith("AWS/"):
        raise ValueError("AWS/ is AWS's own")
    return value


def _patterns(what: str, *, empty: str | None) -> Callable[[Any, ValidationInfo], Any]:
    """A list from a JSON array or comma-separated text. `empty` says what an explicit `[]`
    means, or None if no list may be empty; a bare empty string (`-c protectedTags=`, often an
    unset shell variable) is always refused."""
    accepted = _pattern_list(what).text

    def split(value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except (json.JSONDecodeError, RecursionError):
                    raise Refused(accepted) from None
            else:
                value = [part.strip() for part in text.split(",") if part.strip()]
                if not value:
                    written = f" (write [] for {empty})" if empty else ""
                    raise Refused(f"{accepted}; an empty value is refused{written}")
        if value == [] and empty is None and info.context == CONFIGURED:
            raise Refused(f"{accepted}; an empty list would sweep nothing")
        return value

    return split


CONFIGURED = {"configured": True}
"""The validation context of configured values: an empty includeRepositories is refused there,
not in code (`--repository` may narrow the selection to nothing)."""


def _distinct(value: Any) -> Any:
    """A list from a JSON array or comma-separated text, without repeats."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = (
                json.loads(text)
                if text.startswith("[")
                else [p.strip() for p in text.split(",") if p.strip()]
            )
        except json.JSONDecodeError:
            raise ValueError("not JSON") from None
    if isinstance(value, list | tuple) and len(set(map(str, value))) != len(value):
        raise ValueError("repeats")
    return value


def _list_of(what: str) -> Accepts:
    return Accepts(f"a list of {what}, as a JSON array or comma-separated, without repeats")


def _pattern_list(what: str) -> Accepts:
    return Accepts(
        f"a list of {what} patterns ('*' and '?' wildcards), as a JSON array or comma-separated"
    )


# --- schedules and time zones (EventBridge Scheduler's grammar) ----------------------------------

_CRON = re.compile(r"^cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)$")
_RATE = re.compile(r"^rate\(([1-9][0-9]{0,8}) (minutes?|hours?|days?)\)$")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_NOT_ZONES = frozenset({"Factory", "localtime", "posixrules", "leapseconds", "leap-seconds.list"})
"""Files the tz database ships that are no time zone EventBridge Scheduler accepts."""
SCHEDULE_ACCEPTED = (
    "an EventBridge Scheduler expression: 'cron(minutes hours day-of-month month day-of-week "
    "year)' with six fields and '?' in exactly one of the two day fields, e.g. "
    "'cron(0 3 * * ? *)', or 'rate(VALUE UNIT)' with a singular unit for 1 and a plural one "
    "otherwise, e.g. 'rate(1 day)', 'rate(12 hours)'"
)
TIMEZONE_ACCEPTED = (
    "an IANA time zone name such as 'UTC' or 'Europe/Berlin' (not 'localtime' or 'Factory')"
)


def _schedule(text: str) -> str:
    text = text.strip()
    rate = _RATE.fullmatch(text)
    if rate:
        number, unit = rate.groups()
        if unit.endswith("s") == (number == "1"):
            fixed = unit.removesuffix("s") if number == "1" else f"{unit}s"
            raise Refused(f"{SCHEDULE_ACCEPTED} (write 'rate({number} {fixed})')")
        return text
    cron = _CRON.fullmatch(text)
    if not cron:
        raise Refused(SCHEDULE_ACCEPTED)
    problem = cron_problem(cron.groups())
    if problem:
        raise Refused(f"{SCHEDULE_ACCEPTED} ({problem})")
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


def _timezone(value: str) -> str:
    if not value.strip() or value in _NOT_ZONES or value.startswith(("posix/", "right/")):
        raise ValueError("not a zone")
    known = zoneinfo.available_timezones()
    if known and value not in known and value != "UTC":
        raise ValueError("not a zone")
    if not known and not re.fullmatch(r"[A-Za-z_]+(/[A-Za-z0-9_+-]+)*", value):
        raise ValueError("not a zone")
    return value


# --- values checked elsewhere in the core --------------------------------------------------------


def _location(value: Any) -> Any:
    value = _blank_is_none(value)
    if value is None:
        return None
    problem = location_problem(value) if isinstance(value, str) else "expected a string"
    if problem:
        raise Refused(f"s3://BUCKET/KEY or ssm:/PARAMETER/NAME ({problem})")
    return value


def policy(value: Any) -> dict[str, Any] | None:
    """An ECR lifecycle policy (object or JSON text), normalized; None for a blank value."""
    return _policy(value, lifecycle.parse_policy)


def native_policy(value: Any) -> dict[str, Any] | None:
    """`policy`, also refused where ECR's PutLifecyclePolicy alone refuses it."""
    return _policy(value, lifecycle.parse_native_policy)


def _policy(value: Any, parse: Callable[[Any], lifecycle.LifecyclePolicy]) -> dict[str, Any] | None:
    value = _blank_is_none(value)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise Refused(f"a lifecycle policy as a JSON object ({error})") from None
        except RecursionError:
            raise Refused("a lifecycle policy as a JSON object (nested too deeply)") from None
    try:
        parsed = parse(value)
    except lifecycle.PolicyError as error:
        raise Refused(f"a valid lifecycle policy: {error}") from None
    except RecursionError:
        raise Refused("a valid lifecycle policy (this one is nested too deeply)") from None
    return lifecycle.policy_document(parsed)


# --- the types -----------------------------------------------------------------------------------

WholeNumber = Annotated[int, Strict(), BeforeValidator(_whole)]
"""With Field(ge=..., le=...): errors say 'a whole number from GE to LE'."""
ArchiveRetentionDays = Annotated[
    Annotated[
        int,
        Field(ge=lifecycle.ARCHIVE_MINIMUM_DAYS, le=36500),
        Strict(),
        BeforeValidator(_whole),
    ]
    | None,
    BeforeValidator(_blank_is_none),
    Accepts(f"a whole number from {lifecycle.ARCHIVE_MINIMUM_DAYS} to 36500, or null"),
]
"""Optional, so `-c archiveRetentionDays=null` (or empty) is None. The bounds sit before the
converters: placed after a BeforeValidator, pydantic writes them into the JSON Schema as `ge`
and `le`, which no schema reader knows."""
Boolean = Annotated[bool, Strict(), BeforeValidator(_boolean), Accepts("true or false")]
Price = Annotated[
    float,
    Field(gt=0, le=100, allow_inf_nan=False),
    Strict(),
    BeforeValidator(_price),
    Accepts("a price in USD per GB-month, greater than 0 and at most 100, e.g. 0.10"),
]
Fraction = Annotated[
    float,
    Field(ge=0, le=1, allow_inf_nan=False),
    Strict(),
    BeforeValidator(_price),
    Accepts("a fraction from 0 to 1, e.g. 0.5 (1 turns the check off)"),
]
DeletionCount = Annotated[
    Annotated[int, Field(ge=0, le=1_000_000_000), Strict(), BeforeValidator(_whole)] | None,
    BeforeValidator(_blank_is_none),
    Accepts("a whole number from 0 to 1000000000, or null"),
]
"""Optional, like ArchiveRetentionDays: `-c guardMaxDeletions=null` (or empty) is None."""
LogRetention = Annotated[
    Literal[LOG_RETENTION_DAYS],  # type: ignore[valid-type]
    BeforeValidator(_whole),
    Accepts("one of " + ", ".join(map(str, LOG_RETENTION_DAYS))),
]
LogLevel = Annotated[
    Literal["DEBUG", "INFO", "WARNING", "ERROR"],
    BeforeValidator(_upper),
    Accepts("one of " + ", ".join(LOG_LEVELS)),
]
ExpiredImageAction = Annotated[
    Literal["delete", "archive"],
    BeforeValidator(_lower),
    Accepts("one of " + ", ".join(EXPIRED_IMAGE_ACTIONS)),
]
Policy = Annotated[dict[str, Any] | None, BeforeValidator(policy)]
NativePolicy = Annotated[dict[str, Any] | None, BeforeValidator(native_policy)]

_Tag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.*?-]+$")]
_Repository = Annotated[str, StringConstraints(pattern=r"^[a-z0-9._/*?-]+$")]
_Region = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")]
_Account = Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")]
_Cluster = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_*?-]{1,100}$")]
TagPatterns = Annotated[
    tuple[_Tag, ...],
    BeforeValidator(_patterns("tag", empty="no protected tag")),
    _pattern_list("tag"),
]
IncludedRepositories = Annotated[
    tuple[_Repository, ...],
    BeforeValidator(_patterns("repository name", empty=None)),
    Field(json_schema_extra={"minItems": 1}),
    _pattern_list("repository name"),
]
ExcludedRepositories = Annotated[
    tuple[_Repository, ...],
    BeforeValidator(_patterns("repository name", empty="no exclusion")),
    _pattern_list("repository name"),
]
EksClusters = Annotated[
    tuple[_Cluster, ...],
    BeforeValidator(_patterns("EKS cluster name", empty="no cluster (EKS off)")),
    _pattern_list("EKS cluster name"),
]
_Subnet = Annotated[str, StringConstraints(pattern=r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$")]
_SecurityGroup = Annotated[str, StringConstraints(pattern=r"^sg-([0-9a-f]{8}|[0-9a-f]{17})$")]
SubnetIds = Annotated[
    tuple[_Subnet, ...],
    BeforeValidator(_distinct),
    Field(max_length=16, json_schema_extra={"uniqueItems": True}),
    _list_of("at most 16 VPC subnet ids such as subnet-0123456789abcdef0"),
]
"""Lambda takes at most 16 subnets and 5 security groups."""
SecurityGroupIds = Annotated[
    tuple[_SecurityGroup, ...],
    BeforeValidator(_distinct),
    Field(max_length=5, json_schema_extra={"uniqueItems": True}),
    _list_of("at most 5 security group ids such as sg-0123456789abcdef0"),
]
Regions = Annotated[
    tuple[_Region, ...],
    BeforeValidator(_distinct),
    Field(json_schema_extra={"uniqueItems": True}),
    _list_of("AWS regions such as us-east-1"),
]
Accounts = Annotated[
    tuple[_Account, ...],
    BeforeValidator(_distinct),
    Field(json_schema_extra={"uniqueItems": True}),
    _list_of("12-digit AWS account ids"),
]
RoleName = Annotated[
    str,
    Strict(),
    BeforeValidator(_stripped),
    StringConstraints(pattern=r"^[A-Za-z0-9+=,.@_-]{1,64}$"),
    Accepts("an IAM role name: 1-64 of A-Z a-z 0-9 + = , . @ _ -"),
]
Namespace = Annotated[
    str,
    Strict(),
    BeforeValidator(_stripped),
    StringConstraints(pattern=r"^[A-Za-z0-9._/#:-]{1,255}$"),
    AfterValidator(_not_aws),
    Accepts("a CloudWatch namespace: 1-255 of A-Z a-z 0-9 . _ / # : -, not AWS/"),
]
Email = Annotated[
    Annotated[str, Strict(), StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None,
    BeforeValidator(_blank_is_none),
    Accepts("an email address, or null for no subscription"),
]
PolicyArn = Annotated[
    Annotated[
        str,
        Strict(),
        StringConstraints(
            pattern=r"^arn:aws(-[a-z]+)*:iam::([0-9]{12}|aws):policy/[A-Za-z0-9+=,.@_/-]{1,512}$"
        ),
    ]
    | None,
    BeforeValidator(_blank_is_none),
    Accepts("a managed policy ARN (arn:aws:iam::ACCOUNT:policy/NAME), or null"),
]
KmsKeyArn = Annotated[
    Annotated[
        str,
        Strict(),
        StringConstraints(
            pattern=r"^arn:aws(-[a-z]+)*:kms:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:key/"
            r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$"
        ),
    ]
    | None,
    BeforeValidator(_blank_is_none),
    Accepts("a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/KEY-ID; not an alias), or null"),
]
Location = Annotated[
    str | None,
    BeforeValidator(_location),
    Accepts("s3://BUCKET/KEY or ssm:/PARAMETER/NAME"),
]
Schedule = Annotated[str, Strict(), AfterValidator(_schedule), Accepts(SCHEDULE_ACCEPTED)]
Timezone = Annotated[str, Strict(), AfterValidator(_timezone), Accepts(TIMEZONE_ACCEPTED)]


class Problems(ValueError):
    """Problems said whole, not as 'got X; expected Y' (settings that don't go together)."""

    def __init__(self, *said: str) -> None:
        super().__init__("; ".join(said))
        self.said = said
