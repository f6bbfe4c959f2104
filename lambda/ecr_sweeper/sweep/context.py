"""What every repository of one run shares: the registry, the settings, the log, the images in
use, the budget and the run's batch pool. The engine builds it; the repository unit, its waves
and native policy enforcement read it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ecr_sweeper.core.references import InUse, Usage
from ecr_sweeper.core.settings import Settings
from ecr_sweeper.ports import EventLogger, Registry
from ecr_sweeper.sweep.budget import TimeBudget


@dataclass(frozen=True)
class RunContext:
    """What every repository of one run shares; read-only once the run has started."""

    registry: Registry
    settings: Settings
    log: EventLogger
    run_id: str
    dry_run: bool
    started_at: datetime
    usage: Callable[[], Usage]
    """What is in use. The run learns it while the first repositories are listed, so this
    waits until it is known; only planning needs it."""
    confirmed: Mapping[str, frozenset[str]] | None
    """Per repository, the digests a person saw expire and confirmed; None: no confirmation."""
    budget: TimeBudget
    parallel: Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]
    """Maps a function over items in the run's batch pool, results in item order."""
    audit_lock: threading.Lock = field(default_factory=threading.Lock, compare=False)
    """Held while a block of audit records is written (see `waves.audit_all`)."""
    audited: bool = True
    """Whether the logger writes info records: if not (the CLI without -v and no progress bar),
    the audit records aren't built at all."""

    @property
    def in_use(self) -> InUse:
        return self.usage().in_use

    @property
    def uncertain(self) -> str | None:
        """Why nothing may be deleted anywhere this run (an in-use source failed), if so."""
        return self.usage().uncertain
