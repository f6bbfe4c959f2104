"""`make bench`: time and memory of the decision core and of whole sweeps on the local ECR.

Prints one line per benchmark and writes bench/results/latest.json. Targets live here, not in
tests: a slow CI machine must not fail the build, but a regression shows in these numbers.
"""

from __future__ import annotations

import json
import logging
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ecr_sweeper import lifecycle, planner
from ecr_sweeper.aws import AwsTarget
from ecr_sweeper.engine import sweeper_for
from ecr_sweeper.model import Image
from ecr_sweeper.settings import Settings

RESULTS = Path(__file__).parent / "results" / "latest.json"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
TARGETS = {
    "plan 100k images in one repository": 10.0,
    "plan 10k repositories x 10 images": 10.0,
    "evaluate 10-rule policy over 20k images": 10.0,
    "sweep large:50x200 (dry run)": 60.0,
    "sweep large:50x200 (live)": 90.0,
}
"""Upper bounds in seconds on a 2-core machine; a figure above its target is flagged."""


def images(count: int, rng: random.Random) -> list[Image]:
    tags = ("main", "latest", "release", "pr", "sha")
    result = []
    for number in range(count):
        tagged = rng.random() < 0.7
        result.append(
            Image(
                digest=f"sha256:{number:064x}",
                tags=(f"{rng.choice(tags)}-{number}",) if tagged else (),
                pushed_at=NOW - timedelta(minutes=rng.randint(0, 60 * 24 * 365)),
                size_bytes=rng.randint(10**6, 5 * 10**8),
            )
        )
    return result


def measure(name: str, work: Callable[[], Any]) -> dict[str, Any]:
    """Run one benchmark in this (fresh) process: wall time and peak resident memory."""
    started = time.perf_counter()
    detail = work()
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "name": name,
        "seconds": round(seconds, 3),
        "peakRssMiB": round(peak_kib / 1024, 1),
        "target": TARGETS[name],
        "withinTarget": seconds <= TARGETS[name],
        **(detail or {}),
    }


def plan_one_big_repository() -> dict[str, Any]:
    rules = planner.repository_rules(Settings(), {})
    plan = planner.plan_repository("big", images(100_000, random.Random(1)), rules, now=NOW)
    return {"expired": len(plan.expired)}


def plan_many_repositories() -> dict[str, Any]:
    rng = random.Random(2)
    rules = planner.repository_rules(Settings(), {})
    expired = sum(
        len(planner.plan_repository(f"r{n}", images(10, rng), rules, now=NOW).expired)
        for n in range(10_000)
    )
    return {"expired": expired}


def evaluate_complex_policy() -> dict[str, Any]:
    rules = [
        {
            "rulePriority": number + 1,
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": [f"{prefix}-*"],
                "countType": "imageCountMoreThan",
                "countNumber": 5 + number,
            },
            "action": {"type": "expire"},
        }
        for number, prefix in enumerate(("main", "latest", "release", "pr", "sha"))
    ]
    rules += [
        {
            "rulePriority": 10 + number,
            "selection": {
                "tagStatus": "tagged",
                "tagPrefixList": [prefix],
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 30,
            },
            "action": {"type": "expire"},
        }
        for number, prefix in enumerate(("ma", "la", "re", "p"))
    ]
    rules.append(
        {
            "rulePriority": 99,
            "selection": {
                "tagStatus": "any",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 200,
            },
            "action": {"type": "expire"},
        }
    )
    policy = lifecycle.parse_policy({"rules": rules})
    verdicts = lifecycle.evaluate(policy, images(20_000, random.Random(3)), NOW)
    return {"expired": sum(1 for v in verdicts.values() if v.expired)}


def sweep_emulator(dry_run: bool) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        from local_ecr import LocalEcr

        with LocalEcr(port=0) as local_ecr:
            local_ecr.seed("large:50x200")
            local_ecr.reset_counters()
            target = AwsTarget(region=local_ecr.region, endpoint_url=local_ecr.endpoint_url)
            logger = logging.getLogger("bench")
            summary = sweeper_for(target, Settings(), logger, dry_run=dry_run).run().to_dict()
            calls = dict(local_ecr.calls)
        return {
            "repositories": summary["repositories"],
            "imagesScanned": summary["imagesScanned"],
            "imagesExpired": summary["imagesExpired"],
            "imagesDeleted": summary["imagesDeleted"],
            "apiCalls": sum(calls.values()),
            "callsByOperation": calls,
        }

    return run


BENCHMARKS: dict[str, Callable[[], Any]] = {
    "plan 100k images in one repository": plan_one_big_repository,
    "plan 10k repositories x 10 images": plan_many_repositories,
    "evaluate 10-rule policy over 20k images": evaluate_complex_policy,
    "sweep large:50x200 (dry run)": sweep_emulator(dry_run=True),
    "sweep large:50x200 (live)": sweep_emulator(dry_run=False),
}


def run_one(name: str) -> int:
    """Child process: one benchmark, its result as JSON on stdout."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    os.environ.pop("AWS_PROFILE", None)
    logging.disable(logging.WARNING)
    print(json.dumps(measure(name, BENCHMARKS[name])))
    return 0


def main() -> int:
    """Each benchmark in its own process, so peak memory is its own."""
    results = []
    for name in BENCHMARKS:
        child = subprocess.run(
            [sys.executable, "-m", "bench", name], capture_output=True, text=True, check=True
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
        results.append(result)
        flag = "" if result["withinTarget"] else "  OVER TARGET"
        shown = ("name", "seconds", "peakRssMiB", "target", "withinTarget", "callsByOperation")
        extra = {k: v for k, v in result.items() if k not in shown}
        print(
            f"{name:42} {result['seconds']:7.2f} s (target {result['target']:.0f} s)  "
            f"peak RSS {result['peakRssMiB']:6.1f} MiB  {extra}{flag}"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"python": sys.version.split()[0], "results": results}, indent=2))
    print(f"written to {RESULTS}")
    return 0 if all(r["withinTarget"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(run_one(sys.argv[1]) if len(sys.argv) > 1 else main())
