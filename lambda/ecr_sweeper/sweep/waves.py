"""Acting on a repository's plan: deleting or archiving in waves, each confirmed by a listing,
and the audit record of each image done.

Indexes go before their children and subjects before their referrers; only what a listing
confirms counts and lets what follows it go. `repository.sweep_repository` runs a wave of
each kind after planning.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.model import Decision, Image
from ecr_sweeper.core.results import UNFINISHED, DeleteFailure, RepositoryResult
from ecr_sweeper.ports import BATCH_LIMIT, IMAGE_NOT_FOUND, BatchEventLogger, DeleteOutcome
from ecr_sweeper.sweep.context import RunContext


class Waves:
    """Acts on images in waves: indexes before their children, subjects before their referrers.
    A wave's calls run in parallel; after each wave one listing confirms what was done, and only
    what is confirmed counts and lets what follows it go. A failure counts only for an image the
    listing shows was not done: a lost response to a call that worked is no failure.
    """

    unfinished_when = "between batches"
    """When the budget stops a wave, for the result's reason ("the time budget ran out ...")."""

    def __init__(self, context: RunContext, repository: str, result: RepositoryResult) -> None:
        self._context = context
        self._repository = repository
        self._result = result

    def run(self, decisions: Sequence[Decision], gone: frozenset[str]) -> None:
        position = {d.image.digest: n for n, d in enumerate(decisions)}
        waiting: dict[str, Decision] = {}
        unmet: dict[str, int] = {}
        dependents: dict[str, list[str]] = defaultdict(list)
        wave: list[Decision] = []
        for decision in decisions:
            blockers = [f for f in decision.follows if f not in gone]
            if not blockers:
                wave.append(decision)
                continue
            waiting[decision.image.digest] = decision
            unmet[decision.image.digest] = len(blockers)
            for blocker in blockers:
                dependents[blocker].append(decision.image.digest)
        left: list[Decision] = []
        while wave:
            sent, held_back, failures = self._send(wave)
            done = self._confirmed_done(sent) if sent else set()
            released: list[Decision] = []
            confirmed: list[Decision] = []
            for decision in sent:
                digest = decision.image.digest
                if digest not in done:
                    left.append(decision)
                    self._fail(failures.get(digest, []))
                    continue
                self._done(decision)
                confirmed.append(decision)
                for dependent in dependents.pop(digest, []):
                    unmet[dependent] -= 1
                    if unmet[dependent] == 0:
                        released.append(waiting.pop(dependent))
            audit_all(self._context, self.audit_event, self._repository, confirmed)
            self._fail(failures.get("", []))
            if held_back:
                left.extend(held_back + released)
                self._result.status = UNFINISHED
                self._result.reason = f"{self._context.budget.why} {self.unfinished_when}"
                break
            wave = sorted(released, key=lambda d: position[d.image.digest])
        left.extend(waiting.values())
        for decision in left:
            self._context.log.warning(
                f"not {self.verb}: {self._repository} {decision.image.label()} is not, or what "
                "it belongs to is not",
                extra={
                    ev.EVENT: ev.IMAGE_DELETE_SKIPPED,
                    ev.REPOSITORY: self._repository,
                    ev.IMAGE_DIGEST: decision.image.digest,
                },
            )

    verb = "done"
    audit_event = ""
    """The audit record written for each image done."""

    def _send(
        self, wave: list[Decision]
    ) -> tuple[list[Decision], list[Decision], dict[str, list[DeleteFailure]]]:
        """Act on one wave: the decisions sent, those the time budget held back, and the
        failures by digest ("" for a failure whose id names no image of the wave)."""
        raise NotImplementedError

    def _confirmed_done(self, sent: Sequence[Decision]) -> set[str]:
        """After a wave: the digests of `sent` that the registry shows as done (one listing)."""
        raise NotImplementedError

    def _done(self, decision: Decision) -> None:
        """Count a confirmed image (its audit record is written with the wave's)."""
        raise NotImplementedError

    def _fail(self, failures: list[DeleteFailure]) -> None:
        self._result.delete_failures.extend(failures)
        for failure in failures:
            self._context.log.error(
                f"{self.verb} failed in {self._repository}: {failure.image_id} {failure.code}",
                extra={
                    ev.EVENT: ev.IMAGE_DELETE_FAILED,
                    ev.REPOSITORY: self._repository,
                    "imageId": failure.image_id,
                    ev.ERROR_CODE: failure.code,
                    "failureReason": failure.reason,
                },
            )


class Deletion(Waves):
    """BatchDeleteImage in batches of at most 100 ids. An id that fails with ImageNotFound is
    not a failure by itself (another tag of the image deleted it first, or a retried call had
    already succeeded): the listing decides."""

    verb = "deleted"
    audit_event = ev.IMAGE_DELETED
    unfinished_when = "between delete batches"

    def _send(
        self, wave: list[Decision]
    ) -> tuple[list[Decision], list[Decision], dict[str, list[DeleteFailure]]]:
        ids = [(d, image_id) for d in wave for image_id in image_ids(d.image)]
        batches = [ids[start : start + BATCH_LIMIT] for start in range(0, len(ids), BATCH_LIMIT)]
        outcomes: list[DeleteOutcome | None] = self._context.parallel(self._delete_batch, batches)
        sent: dict[str, Decision] = {}
        unsent: dict[str, Decision] = {}
        failures: dict[str, list[DeleteFailure]] = defaultdict(list)
        for batch, outcome in zip(batches, outcomes, strict=True):
            chosen = unsent if outcome is None else sent
            for decision, _ in batch:
                chosen[decision.image.digest] = decision
            by_tag = {image_id.get("imageTag"): d.image.digest for d, image_id in batch}
            for failure in outcome.failures if outcome else []:
                if failure.code == IMAGE_NOT_FOUND:
                    continue
                digest = failure.image_id.get("imageDigest") or by_tag.get(
                    failure.image_id.get("imageTag"), ""
                )
                failures[digest].append(failure)
        held_back = [d for digest, d in unsent.items() if digest not in sent]
        return list(sent.values()), held_back, failures

    def _delete_batch(self, batch: list[tuple[Decision, dict[str, str]]]) -> DeleteOutcome | None:
        if self._context.budget.exhausted():
            return None
        return self._context.registry.delete_batch(
            self._repository, [image_id for _, image_id in batch]
        )

    def _confirmed_done(self, sent: Sequence[Decision]) -> set[str]:
        """An image is deleted once the listing lacks it."""
        present = self._context.registry.current_tags(self._repository)
        return {d.image.digest for d in sent if d.image.digest not in present}

    def _done(self, decision: Decision) -> None:
        self._result.images_deleted += 1
        self._result.bytes_reclaimed += decision.image.size_bytes


class Archiving(Waves):
    """UpdateImageStorageClass to ARCHIVE, one image a call, the calls of a wave in parallel;
    confirmed by listing the repository's archived images."""

    verb = "archived"
    audit_event = ev.IMAGE_ARCHIVED
    unfinished_when = "between archive calls"

    def _send(
        self, wave: list[Decision]
    ) -> tuple[list[Decision], list[Decision], dict[str, list[DeleteFailure]]]:
        outcomes: list[tuple[bool, DeleteFailure | None]] = self._context.parallel(
            self._archive, wave
        )
        sent: list[Decision] = []
        held_back: list[Decision] = []
        failures: dict[str, list[DeleteFailure]] = defaultdict(list)
        for decision, (was_sent, failure) in zip(wave, outcomes, strict=True):
            (sent if was_sent else held_back).append(decision)
            if failure is not None and failure.code != "ImageNotFoundException":
                failures[decision.image.digest].append(failure)
        return sent, held_back, failures

    def _archive(self, decision: Decision) -> tuple[bool, DeleteFailure | None]:
        if self._context.budget.exhausted():
            return False, None
        return True, self._context.registry.archive(self._repository, decision.image.digest)

    def _confirmed_done(self, sent: Sequence[Decision]) -> set[str]:
        """An image is archived once the listing of archived images has it."""
        archived = self._context.registry.archived_digests(self._repository)
        return {d.image.digest for d in sent if d.image.digest in archived}

    def _done(self, decision: Decision) -> None:
        self._result.images_archived += 1
        self._result.bytes_archived += decision.image.size_bytes


_AUDIT_VERBS = {
    ev.IMAGE_DELETED: "deleted",
    ev.IMAGE_EXPIRED_DRY_RUN: "would delete (dry run)",
    ev.IMAGE_ARCHIVED: "archived",
    ev.IMAGE_ARCHIVED_DRY_RUN: "would archive (dry run)",
}


def audit_all(
    context: RunContext, event: str, repository: str, decisions: Sequence[Decision]
) -> None:
    """A block of audit records, one per image, written under the run's lock. Threads writing
    records at the same moment contend for the GIL: about 40% more CPU a record, and a sweep may
    write 100,000. What the records share is built once; a logger that writes blocks
    (`ports.BatchEventLogger`) gets them all at once."""
    if not decisions or not context.audited:
        return
    verb = _AUDIT_VERBS[event]
    shared = {
        ev.EVENT: event,
        ev.RUN_ID: context.run_id,
        ev.DRY_RUN: context.dry_run,
        ev.REPOSITORY: repository,
    }
    entries = [
        (f"{verb} {repository} {d.image.label()}: {d.reason}", {**shared, **_audit_fields(d)})
        for d in decisions
    ]
    log = context.log
    with context.audit_lock:
        if isinstance(log, BatchEventLogger):
            log.info_batch(entries)
            return
        for message, fields in entries:
            log.info(message, extra=fields)


def _audit_fields(decision: Decision) -> dict[str, Any]:
    image = decision.image
    return {
        ev.IMAGE_DIGEST: image.digest,
        ev.IMAGE_TAGS: list(image.tags),
        ev.IMAGE_PUSHED_AT: image.pushed_at.isoformat(),
        ev.LAST_PULLED_AT: image.last_pulled_at.isoformat() if image.last_pulled_at else None,
        ev.IMAGE_SIZE: image.size_bytes,
        ev.REASON: decision.reason,
        ev.RULE_PRIORITY: decision.rule_priority,
    }


def image_ids(image: Image) -> list[dict[str, str]]:
    """Tagged images are deleted tag by tag, each tag pinned to the image's digest.

    An image that gains a tag meanwhile survives under it (where ECR deletes only the tag), and
    a tag that moved to a newer image meanwhile fails with ImageTagDoesNotMatchDigest instead of
    deleting that newer image. Where ECR instead deletes the whole image for the first id, the
    others fail with ImageNotFound, which the confirming listing reconciles.
    """
    if image.tags:
        return [{"imageDigest": image.digest, "imageTag": tag} for tag in image.tags]
    return [{"imageDigest": image.digest}]
