"""SSM Parameter Store's value size limits, which moto does not enforce.

Real PutParameter refuses a value longer than 4,096 characters on the Standard tier (the
default, and the tier of the stack's state parameter) and longer than 8,192 on the Advanced
tier, with a ValidationException. moto 5.2.5 stores any length, so a write that fails in AWS
passed every test. `enforce()` wraps moto's SSM backend once per process, so every caller sees
the limit: calls over HTTP to the emulator and anything that reaches moto's backend in-process.
"""

from __future__ import annotations

import functools
from typing import Any

STANDARD_MAX_CHARS = 4096
ADVANCED_MAX_CHARS = 8192
STANDARD_TOO_LONG = (
    "Standard tier parameters support a maximum parameter value of 4096 characters. To create a "
    "larger parameter value, upgrade the parameter to use the advanced-parameter tier. For more "
    "information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/"
    "parameter-store-advanced-parameters.html"
)
"""SSM's own message for a Standard-tier value over the limit."""
_MARK = "_local_ecr_size_limits"


def enforce() -> None:
    """Make moto's PutParameter refuse values over the tier's limit (idempotent)."""
    from moto.ssm.models import SimpleSystemManagerBackend

    original = SimpleSystemManagerBackend.put_parameter
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def put_parameter(
        self: Any, name: str, description: str, value: str, *args: Any, **kwargs: Any
    ) -> Any:
        check_value(value, _tier(self, name, kwargs.get("tier")))
        return original(self, name, description, value, *args, **kwargs)

    setattr(put_parameter, _MARK, True)
    setattr(SimpleSystemManagerBackend, "put_parameter", put_parameter)  # noqa: B010


def _tier(backend: Any, name: str, requested: str | None) -> str:
    """The tier the value is stored in: the one asked for, else the parameter's own (moto keeps
    it on overwrite), else the account's default (Standard)."""
    if requested:
        return requested
    # Not .get(): moto's dict normalizes names only in `in` and `[]`.
    parameters = backend._parameters
    versions = parameters[name] if name in parameters else None  # noqa: SIM401
    if versions:
        return str(versions[-1].tier or backend.default_parameter_tier)
    return str(backend.default_parameter_tier)


def check_value(value: str | None, tier: str) -> None:
    """Raise moto's ValidationException if `value` is too long for `tier`. Intelligent-Tiering
    stores a long value in the Advanced tier, so its limit is Advanced's."""
    from moto.ssm.exceptions import ValidationException

    if value is None:
        return
    if tier == "Standard" and len(value) > STANDARD_MAX_CHARS:
        raise ValidationException(STANDARD_TOO_LONG)
    if len(value) > ADVANCED_MAX_CHARS:
        raise ValidationException(
            "1 validation error detected: Value at 'value' failed to satisfy constraint: "
            f"Member must have length less than or equal to {ADVANCED_MAX_CHARS}"
        )
