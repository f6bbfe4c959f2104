"""A local ECR built on moto that behaves like the real one (pagination, id limits, sha256
digests, moving tags, index children, ImageDetail fields, referrers), with a settable clock,
fault injection, latency, call counters and seeded scenarios. See docs/local-ecr.md."""

from local_ecr.clock import Clock
from local_ecr.faults import FaultRule, Faults
from local_ecr.scenarios import SeededImage, SeedResult, accepted_scenarios, parse_scenario
from local_ecr.server import LocalEcr

__all__ = [
    "Clock",
    "FaultRule",
    "Faults",
    "LocalEcr",
    "SeedResult",
    "SeededImage",
    "accepted_scenarios",
    "parse_scenario",
]
