"""The deletion guard: whether a live run, as a whole, deletes far more than it should.

Every other rule decides image by image; this one looks at the run's plan total before anything
is deleted. A run that would delete (or archive) more than `guardMaxDeletionFraction` of the
images it scanned, or more than `guardMaxDeletions` images, holds: it deletes nothing and asks a
person. An approval (`ecr-sweeper approve`, a person at the CLI's prompt, `--approve-deletions
N`) states how many deletions are expected instead, and the run proceeds only up to that many.

Pure: counts and the approval in, the decision and its reason out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

FRACTION_SETTING = "guardMaxDeletionFraction"
COUNT_SETTING = "guardMaxDeletions"
APPROVAL_LIMIT = "approval"
"""The limit named when an approval (or the CLI's --approve-deletions) covers fewer deletions."""

TOP_REPOSITORIES = 5
"""How many repositories, those with the most deletions, the held record names."""

APPROVAL_HEADROOM_PERCENT = 10
"""An approval covers the held run's deletions plus this share, for images pushed since."""
DEFAULT_APPROVAL_DAYS = 7


@dataclass(frozen=True)
class GuardDecision:
    """Whether the run holds, with the numbers a person needs to judge it."""

    held: bool
    would_delete: int
    scanned: int
    reason: str
    limit: str | None = None
    """The limit that tripped (a setting's name, or "approval"); None when the run proceeds."""
    allowed: float | None = None
    """That limit's value: a fraction, or a number of images."""
    top: tuple[tuple[str, int], ...] = ()
    """The repositories with the most deletions, most first, at most TOP_REPOSITORIES."""
    approval: str | None = None
    """The held run whose approval this run used (or "cli" for a person at the CLI)."""

    @property
    def fraction(self) -> float:
        return self.would_delete / self.scanned if self.scanned else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "held": self.held,
            "wouldDelete": self.would_delete,
            "imagesScanned": self.scanned,
            "fraction": round(self.fraction, 4),
            "limit": self.limit,
            "allowed": self.allowed,
            "reason": self.reason,
            "topRepositories": [
                {"repository": name, "wouldDelete": count} for name, count in self.top
            ],
            "approvalUsed": self.approval,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GuardDecision:
        """Read `to_dict` back (the fan-out's guard document); raises KeyError/TypeError/
        ValueError on anything else."""
        allowed = data["allowed"]
        approval = data["approvalUsed"]
        limit = data["limit"]
        return cls(
            held=_boolean(data["held"]),
            would_delete=int(data["wouldDelete"]),
            scanned=int(data["imagesScanned"]),
            reason=str(data["reason"]),
            limit=None if limit is None else str(limit),
            allowed=None if allowed is None else float(allowed),
            top=tuple(
                (str(entry["repository"]), int(entry["wouldDelete"]))
                for entry in data["topRepositories"]
            ),
            approval=None if approval is None else str(approval),
        )


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def top_repositories(counts: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """The repositories with the most deletions, most first (name order among equals)."""
    ranked = sorted(((n, c) for n, c in counts if c > 0), key=lambda item: (-item[1], item[0]))
    return tuple(ranked[:TOP_REPOSITORIES])


def decide(
    counts: Iterable[tuple[str, int]],
    scanned: int,
    *,
    max_fraction: float,
    max_deletions: int | None,
    approved_up_to: int | None = None,
    approved_by: str | None = None,
) -> GuardDecision:
    """The guard's decision over a run's plan: `counts` is (repository, images it would delete
    or archive) for every planned repository, `scanned` the images the run scanned.

    `approved_up_to`, when given, replaces the limits: the run proceeds only if it deletes at most
    that many (`approved_by` names who approved). A run that deletes nothing always proceeds.
    """
    listed = list(counts)
    would = sum(count for _, count in listed)
    top = top_repositories(listed)
    base = GuardDecision(held=False, would_delete=would, scanned=scanned, reason="", top=top)
    if approved_up_to is not None:
        if would <= approved_up_to:
            return replace(
                base,
                reason=f"approved: {would} deletions, the approval covers up to {approved_up_to}",
                approval=approved_by,
            )
        return replace(
            base,
            held=True,
            limit=APPROVAL_LIMIT,
            allowed=approved_up_to,
            reason=f"the plan deletes {would} images, more than the {approved_up_to} approved",
        )
    if would == 0:
        return replace(base, reason="nothing to delete")
    if max_fraction < 1 and base.fraction > max_fraction:
        return replace(
            base,
            held=True,
            limit=FRACTION_SETTING,
            allowed=max_fraction,
            reason=f"the plan deletes {would} of {scanned} images scanned "
            f"({base.fraction:.0%}), more than {FRACTION_SETTING} {max_fraction:g}",
        )
    if max_deletions is not None and would > max_deletions:
        return replace(
            base,
            held=True,
            limit=COUNT_SETTING,
            allowed=max_deletions,
            reason=f"the plan deletes {would} images, more than {COUNT_SETTING} {max_deletions}",
        )
    return replace(base, reason=f"within the limits: {would} of {scanned} images")


@dataclass(frozen=True)
class Approval:
    """A person's approval of a held run: the next live run may delete up to `max_deletions`,
    once, until `expires_at`. Kept in the stack's state parameter under "approval"."""

    run_id: str
    """The held run that was reviewed."""
    max_deletions: int
    approved_at: datetime
    expires_at: datetime
    used_by: str | None = None
    """The run that used it; a used approval never counts again."""
    used_at: datetime | None = None

    def usable(self, now: datetime) -> bool:
        return self.used_by is None and now < self.expires_at

    def used(self, run_id: str, now: datetime) -> Approval:
        return replace(self, used_by=run_id, used_at=now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "maxDeletions": self.max_deletions,
            "approvedAt": self.approved_at.isoformat(),
            "expiresAt": self.expires_at.isoformat(),
            "usedBy": self.used_by,
            "usedAt": self.used_at.isoformat() if self.used_at else None,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Approval:
        """Read `to_dict` back; raises ValueError (naming the field) on anything else."""
        if not isinstance(data, Mapping):
            raise ValueError("approval: expected a JSON object")
        try:
            run_id, count = data["runId"], data["maxDeletions"]
            if not isinstance(run_id, str) or not run_id:
                raise ValueError("approval.runId: expected the held run's id")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError("approval.maxDeletions: expected a whole number")
            used_by, used_at = data.get("usedBy"), data.get("usedAt")
            return cls(
                run_id=run_id,
                max_deletions=count,
                approved_at=_moment(data["approvedAt"], "approvedAt"),
                expires_at=_moment(data["expiresAt"], "expiresAt"),
                used_by=None if used_by is None else str(used_by),
                used_at=None if used_at is None else _moment(used_at, "usedAt"),
            )
        except KeyError as error:
            raise ValueError(f"approval.{error.args[0]}: missing") from None


def _moment(value: Any, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"approval.{name}: expected an ISO 8601 time, got {value!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"approval.{name}: expected a time with its UTC offset, got {value!r}")
    return moment


def approval_for(
    run_id: str, would_delete: int, *, now: datetime, valid_for: timedelta
) -> Approval:
    """The approval of a held run that would have deleted `would_delete` images: that many plus
    APPROVAL_HEADROOM_PERCENT (rounded up) for images pushed since, for `valid_for`."""
    headroom = -(-would_delete * APPROVAL_HEADROOM_PERCENT // 100)
    return Approval(
        run_id=run_id,
        max_deletions=would_delete + headroom,
        approved_at=now,
        expires_at=now + valid_for,
    )
