"""The one settings schema, validated at synth time (app.py), by the CLI, and at Lambda start.

Settings are flat camelCase keys in cdk.json context, one pydantic model per concern:
`SelectionSettings`, `PolicySettings`, `ProtectionSettings` and `RunOptions` make `Settings`,
what the Lambda runs with; `StackSettings` adds `DeploySettings` (schedule, logs, alarm, fan-out
shape), what synth, the CLI and the stack validate. The Lambda's reader drops the deploy-only
keys unvalidated. Every error names the key, where its value came from, the value and what is
accepted; all problems are reported at once. The value types are in `core.setting_types`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, Self, TypeVar

from pydantic import TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo

from ecr_sweeper.core import metrics_catalog
from ecr_sweeper.core.setting_models import (
    CONFIG,
    DeploySettings,
    PolicySettings,
    ProtectionSettings,
    RunOptions,
    SelectionSettings,
)
from ecr_sweeper.core.setting_types import (
    CONFIGURED,
    Accepts,
    Problems,
    Refused,
    native_policy,
    policy,
)

T = TypeVar("T")

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


class SettingsError(ValueError):
    """Settings that can't be used; `problems` lists every bad key with what is accepted."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        if len(problems) == 1:
            super().__init__(f"invalid settings: {problems[0]}")
        else:
            super().__init__("invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True, config=CONFIG)
class Settings(RunOptions, ProtectionSettings, SelectionSettings, PolicySettings):
    """What the Lambda runs with. Field names are the snake_case form of the cdk.json keys."""

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], origins: Mapping[str, str] | None = None
    ) -> Self:
        """Validate camelCase keys (all of them must be ours) into settings of this class; the
        run-time `Settings` drop the deploy-only keys unvalidated.

        `origins` names where each key's value came from (`-c`, `cdk.json`), for the errors.
        """
        keys = _keys(cls)
        position = {key: n for n, key in enumerate(values)}
        problems: dict[str, str] = {}
        for key in values:
            if key not in keys and key not in _keys(StackSettings):
                problems[key] = _from(key, origins) + unknown_key_message(key).removeprefix(key)
        known = {key: value for key, value in values.items() if key in keys}
        try:
            settings = _adapter(cls).validate_python(
                known, by_alias=True, by_name=False, context=CONFIGURED
            )
            if not problems:
                return settings
        except ValidationError as error:
            for detail in error.errors():
                key = str(detail["loc"][0]) if detail["loc"] else ""
                if key not in problems and (key or not problems):
                    problems[key] = _message(cls, key, detail, known, origins)
        ordered = sorted(problems, key=lambda key: position.get(key, len(position)))
        raise SettingsError([line for key in ordered for line in problems[key].split("\n")])

    @classmethod
    def from_context(
        cls,
        context: Mapping[str, Any],
        base_dir: Path | None = None,
        origins: Mapping[str, str] | None = None,
    ) -> Self:
        """Validate the settings among CDK context keys; reads `lifecyclePolicyFile` if given.

        Every key must be a setting or one of CDK's own (see `_CDK_KEY`).
        """
        own = {key: value for key, value in context.items() if _OWN_KEY.fullmatch(key)}
        given = dict(own)
        foreign = [
            foreign_key_message(key, origins)
            for key in context
            if not _OWN_KEY.fullmatch(key) and not _CDK_KEY.fullmatch(key)
        ]
        try:
            settings = cls.from_mapping(_read_policy_files(own, base_dir, origins), origins)
        except SettingsError as error:
            raise SettingsError([*foreign, *error.problems]) from None
        if foreign:
            raise SettingsError(foreign)
        unused = unused_problems(settings, given, origins)
        if unused:
            raise SettingsError(unused)
        return settings

    @classmethod
    def from_json(cls, text: str) -> Self:
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
        values = {to_camel(f.name): getattr(self, f.name) for f in fields(self)}
        return json.dumps(values, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True, config=CONFIG)
class StackSettings(DeploySettings, Settings):
    """Every setting: what synth, the CLI and the stack validate."""


def _keys(cls: type[Settings]) -> dict[str, FieldInfo]:
    """cdk.json key: field, in the schema's order."""
    found: dict[str, FieldInfo] = getattr(cls, "__pydantic_fields__")  # noqa: B009
    return {to_camel(name): info for name, info in found.items()}


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(cls: type[T]) -> TypeAdapter[T]:
    """One validator per settings class, built on first use (building one takes milliseconds)."""
    if cls not in _ADAPTERS:
        _ADAPTERS[cls] = TypeAdapter(cls)
    return _ADAPTERS[cls]


def _message(
    cls: type[Settings],
    key: str,
    detail: Mapping[str, Any],
    values: Mapping[str, Any],
    origins: Mapping[str, str] | None,
) -> str:
    """One problem in our words: 'KEY (ORIGIN): got VALUE; expected WHAT IS ACCEPTED'."""
    error = detail.get("ctx", {}).get("error")
    if isinstance(error, Problems):
        return "\n".join(error.said)
    info = _keys(cls)[key]
    bounds = {type(m).__name__: m for m in info.metadata}
    accepted = f"a whole number from {getattr(bounds.get('Ge'), 'ge', 0)} to " + str(
        getattr(bounds.get("Le"), "le", 0)
    )
    accepted = next((m.text for m in info.metadata if isinstance(m, Accepts)), accepted)
    if isinstance(error, Refused):
        accepted = error.accepted
    return f"{_from(key, origins)}: got {shown(values[key])}; expected {accepted}"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of every setting (cdk.json keys, defaults, bounds), for `--schema`."""
    return _adapter(StackSettings).json_schema(by_alias=True)


POLICY_FILE_KEY = "lifecyclePolicyFile"
NATIVE_POLICY_FILE_KEY = "nativeLifecyclePolicyFile"
POLICY_FILES = {
    POLICY_FILE_KEY: "lifecyclePolicy",
    NATIVE_POLICY_FILE_KEY: "nativeLifecyclePolicy",
}
"""Each file key and the setting its file fills in."""
SETTING_KEYS: tuple[str, ...] = (*_keys(StackSettings), POLICY_FILE_KEY, NATIVE_POLICY_FILE_KEY)


def unused_settings(settings: Settings, given: Collection[str] = ()) -> dict[str, str]:
    """{key: which setting wins, or why it has no effect} for each setting these settings don't
    use. `given`: the keys given (to name lifecyclePolicyFile rather than lifecyclePolicy)."""
    unused: dict[str, str] = {}
    if settings.lifecycle_policy is not None:
        winner = POLICY_FILE_KEY if POLICY_FILE_KEY in given else "lifecyclePolicy"
        why = f"{winner} wins: a lifecycle policy replaces keepTaggedImages and untaggedGraceDays"
        unused["keepTaggedImages"] = unused["untaggedGraceDays"] = why
    if not settings.accounts:
        unused["crossAccountRoleName"] = "no accounts are set, so no role is assumed"
    if settings.native_lifecycle_policy is None:
        unused["nativeLifecyclePolicyForce"] = "no nativeLifecyclePolicy is set"
    return unused


def unused_problems(
    settings: Settings, given: Mapping[str, Any], origins: Mapping[str, str] | None = None
) -> list[str]:
    """An error for each setting given explicitly that another setting overrides (or makes
    unused): given with `-c`, or in a file with a value other than its default (cdk.json lists
    every setting at its default, and those change nothing)."""
    files = {key for key, value in given.items() if value not in (None, "")}
    defaults = type(settings)()
    problems = []
    for key, why in unused_settings(settings, files).items():
        if key not in given:
            continue
        name = _snake(key)
        value = getattr(settings, name)
        from_c = origins is not None and origins.get(key) == "-c"
        if from_c or value != getattr(defaults, name):
            problems.append(
                f"{_from(key, origins)}: {shown(value)} would not be used ({why}); remove "
                f"{key}, or the setting that overrides it"
            )
    return problems


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def describe_settings() -> list[tuple[str, str]]:
    """(key, help) for every setting, for docs and `--help`."""
    described = [(key, info.description or "") for key, info in _keys(StackSettings).items()]
    described.append((POLICY_FILE_KEY, "path of a lifecycle policy JSON file, read at synth time"))
    described.append(
        (NATIVE_POLICY_FILE_KEY, "path of a nativeLifecyclePolicy JSON file, read at synth time")
    )
    return described


def _read_policy_files(
    own: dict[str, Any], base_dir: Path | None, origins: Mapping[str, str] | None
) -> dict[str, Any]:
    """`own` with each policy file key replaced by the policy its file holds."""
    for file_key, setting in POLICY_FILES.items():
        policy_file = own.pop(file_key, None)
        if policy_file in (None, ""):
            continue
        if own.get(setting) not in (None, ""):
            raise SettingsError([f"{setting} and {file_key}: give one of them, not both"])
        where = f"{_from(file_key, origins)} {str(policy_file)!r}"
        document = _read_policy_file(str(policy_file), base_dir or Path.cwd(), where)
        try:
            read = native_policy if file_key == NATIVE_POLICY_FILE_KEY else policy
            own[setting] = read(document)
        except Refused as error:
            raise SettingsError([f"{where}: {error}"]) from None
    return own


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


def function_environment(settings: StackSettings) -> dict[str, str]:
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


def environment_problem(settings: StackSettings) -> str | None:
    """Why these settings can't be deployed (synth fails on it; `plan` warns), or None."""
    size = environment_size(function_environment(settings)) + DEPLOY_TIME_ENVIRONMENT_BYTES
    if size <= ENVIRONMENT_LIMIT_BYTES:
        return None
    return (
        f"lifecyclePolicy: the settings need {size} bytes of Lambda environment, over its "
        f"{ENVIRONMENT_LIMIT_BYTES}-byte (4 KB) limit; shorten the lifecycle policy "
        "(fewer rules, shorter descriptions or tag pattern lists)"
    )
