"""The deletion guard of one live run (core.guard decides): it counts the run's plan, reads an
approval on record, logs `guard.held` when it holds, and records an approval it used.

A run with the CLI's stated expectation (`--approve-deletions N`, or the count a person confirmed
at the prompt) is judged against that number alone. Otherwise the settings' limits judge it, and
only when they hold is an approval on record consulted: the approval is used once, by the run it
lets proceed, and recorded as used before anything is deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from ecr_sweeper.core import guard as core
from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.settings import Settings
from ecr_sweeper.ports import ApprovalStore, EventLogger


def _utc_now() -> datetime:
    return datetime.now(UTC)


LAMBDA_ADVICE = (
    "review it with `ecr-sweeper runs show {run_id}` and approve it with "
    "`ecr-sweeper approve {run_id}`"
)


class RunGuard:
    """Decides once per run, over every repository's plan (every target's, with several).

    `advice` tells the person reading `guard.held` what to do ({run_id} is filled in)."""

    def __init__(
        self,
        settings: Settings,
        logger: EventLogger,
        *,
        expected: int | None = None,
        approvals: ApprovalStore | None = None,
        clock: Callable[[], datetime] = _utc_now,
        advice: str = LAMBDA_ADVICE,
    ) -> None:
        self._advice = advice
        self._settings = settings
        self._log = logger
        self._expected = expected
        self._approvals = approvals
        self._clock = clock

    def decide(
        self, run_id: str, counts: Iterable[tuple[str, int]], scanned: int
    ) -> core.GuardDecision:
        """The decision over (repository, images it would delete or archive) pairs; logged."""
        counts = list(counts)
        if self._expected is not None:
            decision = self._decide(counts, scanned, self._expected, "cli")
        else:
            decision = self._decide(counts, scanned)
            if decision.held and self._approvals is not None:
                decision = self._with_approval(run_id, counts, scanned, decision)
        if decision.held:
            self._held(run_id, decision)
        return decision

    def _decide(
        self,
        counts: list[tuple[str, int]],
        scanned: int,
        approved_up_to: int | None = None,
        approved_by: str | None = None,
    ) -> core.GuardDecision:
        return core.decide(
            counts,
            scanned,
            max_fraction=self._settings.guard_max_deletion_fraction,
            max_deletions=self._settings.guard_max_deletions,
            approved_up_to=approved_up_to,
            approved_by=approved_by,
        )

    def _with_approval(
        self,
        run_id: str,
        counts: list[tuple[str, int]],
        scanned: int,
        held: core.GuardDecision,
    ) -> core.GuardDecision:
        assert self._approvals is not None
        approval = self._approvals.load()
        now = self._clock()
        if approval is None or not approval.usable(now):
            return held
        decision = self._decide(counts, scanned, approval.max_deletions, approval.run_id)
        if decision.held:
            return decision
        if not self._approvals.save(approval.used(run_id, now)):
            reason = "the approval could not be recorded as used, so it was not used"
            self._log.error(reason, extra={ev.EVENT: ev.APPROVAL_UNAVAILABLE, ev.REASON: reason})
            return held
        self._log.info(
            f"approval of run {approval.run_id} used: {decision.reason}",
            extra={
                ev.EVENT: ev.GUARD_APPROVAL_USED,
                ev.RUN_ID: run_id,
                "approvedRun": approval.run_id,
                "maxDeletions": approval.max_deletions,
                ev.WOULD_DELETE: decision.would_delete,
            },
        )
        return decision

    def _held(self, run_id: str, decision: core.GuardDecision) -> None:
        self._log.warning(
            f"deletion guard held the run: {decision.reason}; nothing is deleted; "
            + self._advice.format(run_id=run_id),
            extra={ev.EVENT: ev.GUARD_HELD, ev.RUN_ID: run_id, **decision.to_dict()},
        )
