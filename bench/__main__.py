"""`make bench`: time and memory of the decision core and of whole sweeps on the local ECR.

Prints one line per benchmark and writes the figures to bench/results/last-run.json, which git
ignores; `--record` (`make bench-record`) writes the tracked bench/results/latest.json instead,
the figures the README quotes, so they change only on purpose. Targets live here, not in tests:
a slow CI machine must not fail the build, but a regression shows in these numbers.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ecr_sweeper.aws.clients import AwsTarget
from ecr_sweeper.core import lifecycle, metrics_catalog, overrides, planner
from ecr_sweeper.core.log_events import RECORD_LIMIT_BYTES
from ecr_sweeper.core.model import Image
from ecr_sweeper.core.settings import ENVIRONMENT_VARIABLE, Settings
from ecr_sweeper.sweep.engine import sweeper_for
from ecr_sweeper.sweep.in_use import images_in_use
from ecr_sweeper.sweep.waves import image_ids
from tests.helpers.lambda_context import LambdaContext

RESULTS_DIRECTORY = Path(__file__).parent / "results"
RECORDED = RESULTS_DIRECTORY / "latest.json"
"""Tracked: the figures the README quotes, rewritten only by `make bench-record`."""
LAST_RUN = RESULTS_DIRECTORY / "last-run.json"
"""Ignored by git: where every `make bench` writes, leaving the working tree clean."""
NOW = datetime(2026, 6, 1, tzinfo=UTC)
TARGETS = {
    "plan 100k images in one repository": 10.0,
    "plan 10k repositories x 10 images": 10.0,
    "evaluate 10-rule policy over 20k images": 10.0,
    "sweep 200x500 at 50 ms a call (dry run)": 12.0,
    "sweep 200x500 at 50 ms a call (live)": 12.0,
    "sweep 200x500 at 50 ms a call, 20% throttled (live)": 36.0,
    "sweep 200x500 at 50 ms a call, Lambda handler (live)": 24.0,
    "sweep 1x25000 at 5 ms a call (live)": 120.0,
    "sweep 1x100000 at 5 ms a call (live)": 600.0,
    "extra sweep time reading an EKS cluster of 2,000 pods": 5.0,
    "records: the largest a 1,000-repository run logs (Lambda handler)": 120.0,
}
"""Upper bounds in seconds on a 2-core machine; a figure above its target is flagged. The
200x500 targets are the issue's: under 12 s unthrottled (10x awslabs/ecr-cleanup-lambda's 117 s
on the same workload), and throttling at most 3x that. Through the Lambda handler the same sweep
also writes one Powertools audit record per deleted image (98,000 here): its bound is twice the
engine's. 100,000 images must sweep well inside Lambda's 900 s. Reading an EKS cluster of
2,000 pods may add at most 5 s to a sweep (its lists are read while the first repositories
are listed)."""


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
    detail = work() or {}
    # A sweep times itself, leaving out starting and seeding the local ECR.
    seconds = detail.get("wallSeconds", time.perf_counter() - started)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "name": name,
        "seconds": round(seconds, 3),
        "peakRssMiB": round(peak_kib / 1024, 1),
        "target": TARGETS[name],
        "withinTarget": seconds <= TARGETS[name] and detail.get("withinLimit", True),
        **detail,
    }


def plan_one_big_repository() -> dict[str, Any]:
    rules = overrides.repository_rules(Settings(), {})
    plan = planner.plan_repository("big", images(100_000, random.Random(1)), rules, now=NOW)
    return {"expired": len(plan.expired)}


def plan_many_repositories() -> dict[str, Any]:
    rng = random.Random(2)
    rules = overrides.repository_rules(Settings(), {})
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


@dataclass(frozen=True)
class Workload:
    """A live sweep of a seeded registry served by the local ECR in a process of its own, so the
    figures here (CPU, memory) are the sweeper's alone, as they would be in Lambda."""

    scenario: str
    latency_ms: float = 0.0
    throttle_rate: float = 0.0
    dry_run: bool = False
    concurrency: int | None = None
    through_handler: bool = False
    """Invoke the Lambda handler itself: Powertools Logger, Metrics and Tracer, one JSON audit
    record per deleted image (to /dev/null here, to CloudWatch Logs in Lambda)."""


def emulator_process(workload: Workload) -> tuple[subprocess.Popen[str], str]:
    """Start `python -m local_ecr` seeded with the scenario; returns it and its endpoint."""
    command = [sys.executable, "-m", "local_ecr", "--port", "0", "--scenario", workload.scenario]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    endpoint = process.stdout.readline().strip()
    if not endpoint.startswith("http://127.0.0.1:"):
        process.kill()
        raise RuntimeError(f"the local ECR did not start: {endpoint!r}")
    return process, endpoint


def process_cpu_seconds(pid: int) -> float | None:
    """CPU time of another process (Linux /proc); None where that can't be read. The local
    ECR's CPU for the same workload shows how fast the machine was during a run."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def control(endpoint: str, method: str, route: str, payload: dict[str, Any] | None = None) -> Any:
    """The local ECR's control API (faults, latency, call counts)."""
    body = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(f"{endpoint}/_local_ecr/{route}", data=body, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def warm_up(target: AwsTarget) -> None:
    """One call to each service the sweep reads, so moto's lazy start-up of a service (a second
    or more, which real AWS doesn't have) isn't timed as the sweeper's."""
    target.client("ecr").describe_repositories(maxResults=1)
    target.client("ecs").list_clusters()
    target.client("lambda").list_functions()
    target.client("events").list_event_buses()
    target.client("scheduler").list_schedules()
    target.client("batch").describe_job_definitions(status="ACTIVE")
    target.client("sagemaker").list_models()
    target.client("codebuild").list_projects()
    target.client("eks").list_clusters()


def lower_bound(summary: Any) -> int:
    """Per repository: one listing page per 1,000 images plus one delete call per 100 ids."""
    calls = 0
    for result in summary.results:
        ids = sum(len(image_ids(d.image)) for d in result.plan.expired) if result.plan else 0
        calls += math.ceil(result.images_scanned / 1000) + math.ceil(ids / 100)
    return calls


Sweep = Callable[[Workload], tuple[dict[str, Any], int | None]]
"""Runs the workload's sweep: the run summary, and the lower bound of its ECR calls if known."""


def engine_sweep(target: AwsTarget) -> Sweep:
    """The engine as the CLI runs it, its log records dropped (the CLI shows only warnings)."""

    def sweep(workload: Workload) -> tuple[dict[str, Any], int | None]:
        summary = sweeper_for(
            target,
            Settings(),
            logging.getLogger("bench"),
            dry_run=workload.dry_run,
            max_concurrency=workload.concurrency,
        ).run()
        return summary.to_dict(), lower_bound(summary)

    return sweep


def handler_sweep(endpoint: str) -> Sweep:
    """The Lambda handler, with the stack's environment and every log record written out."""
    os.environ.update(
        {
            # The workload deletes 98% of its images: the deletion guard (default 0.5) would hold
            # it, and this measures the deletes.
            ENVIRONMENT_VARIABLE: Settings(guard_max_deletion_fraction=1.0).to_json(),
            "AWS_ENDPOINT_URL": endpoint,
            "POWERTOOLS_SERVICE_NAME": metrics_catalog.SERVICE,
            "POWERTOOLS_METRICS_NAMESPACE": "EcrSweeper",
        }
    )
    logging.disable(logging.NOTSET)
    from ecr_sweeper.handlers import sweeper as handler

    sink = open(os.devnull, "w")  # noqa: SIM115 - open for the rest of this process
    for stream_handler in logging.getLogger(metrics_catalog.SERVICE).handlers:
        if isinstance(stream_handler, logging.StreamHandler):
            stream_handler.stream = sink

    def sweep(workload: Workload) -> tuple[dict[str, Any], int | None]:
        event = {"dryRun": True} if workload.dry_run else {}
        with contextlib.redirect_stdout(sink):
            result: dict[str, Any] = handler.lambda_handler(
                event, LambdaContext(aws_request_id="bench")
            )
        return result, None  # the handler's summary doesn't carry the decisions

    return sweep


def sweep_emulator(workload: Workload) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        process, endpoint = emulator_process(workload)
        try:
            if workload.latency_ms:
                control(endpoint, "POST", "latency", {"seconds": workload.latency_ms / 1000})
            if workload.throttle_rate:
                control(
                    endpoint, "POST", "faults", {"kind": "throttle", "rate": workload.throttle_rate}
                )
            target = AwsTarget(region="us-east-1", endpoint_url=endpoint)
            warm_up(target)
            control(endpoint, "DELETE", "calls")
            sweep = handler_sweep(endpoint) if workload.through_handler else engine_sweep(target)
            cpu_before = resource.getrusage(resource.RUSAGE_SELF)
            emulator_before = process_cpu_seconds(process.pid)
            started = time.perf_counter()
            data, bound = sweep(workload)
            wall = time.perf_counter() - started
            cpu_after = resource.getrusage(resource.RUSAGE_SELF)
            emulator_after = process_cpu_seconds(process.pid)
            calls = control(endpoint, "GET", "calls")["calls"]
        finally:
            process.terminate()
            process.wait(timeout=30)
        ecr_calls = calls.get("ecr", {})
        return {
            "wallSeconds": round(wall, 2),
            "cpuSeconds": round(
                cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime,
                2,
            ),
            "localEcrCpuSeconds": round(emulator_after - emulator_before, 2)
            if emulator_after is not None and emulator_before is not None
            else None,
            "repositories": data["repositories"],
            "imagesScanned": data["imagesScanned"],
            "imagesExpired": data["imagesExpired"],
            "imagesDeleted": data["imagesDeleted"],
            "failures": data["failures"],
            "throttledCalls": data["throttledCalls"],
            "lowestConcurrency": data["lowestConcurrency"],
            "ecrCalls": sum(ecr_calls.values()),
            "lowerBound": bound,
            "callsOverBound": round(sum(ecr_calls.values()) / bound, 2) if bound else None,
            "callsByOperation": ecr_calls,
            "otherCalls": {s: ops for s, ops in calls.items() if s != "ecr"},
        }

    return run


EKS_PODS = 2000
EKS_ROUNDS = 3


def sweep_with_eks_cluster() -> dict[str, Any]:
    """The extra time a sweep spends reading an EKS cluster of 2,000 pods (a busy cluster's
    shape, `tests.helpers.kubernetes.busy_cluster`, about 4 KB a pod): the same dry-run sweep of
    20 repositories x 100 images at 5 ms a call, alternately without EKS and with the cluster,
    medians of 3 each; and the cluster's read alone. The Kubernetes API double runs in a process
    of its own, as the local ECR does."""
    process, endpoint = emulator_process(Workload("large:20x100"))
    cluster = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.kubernetes", str(EKS_PODS), BENCH_HOST],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert cluster.stdout is not None
        api = json.loads(cluster.stdout.readline())
        control(endpoint, "POST", "latency", {"seconds": 0.005})
        control(
            endpoint,
            "POST",
            "eks-cluster",
            {"name": "prod", "endpoint": api["url"], "caPem": api["caPem"]},
        )
        target = AwsTarget(region="us-east-1", endpoint_url=endpoint)
        warm_up(target)
        seconds: dict[str, list[float]] = {"without": [], "with": [], "read": []}
        references = 0
        for _ in range(EKS_ROUNDS):
            for key, clusters in (("without", ()), ("with", ("*",))):
                started = time.perf_counter()
                summary = sweeper_for(
                    target,
                    Settings(eks_clusters=clusters),
                    logging.getLogger("bench"),
                    dry_run=True,
                ).run()
                seconds[key].append(time.perf_counter() - started)
                assert summary.failures == 0, summary.to_dict()
            only_eks = Settings(
                eks_clusters=("*",),
                protect_ecs_images=False,
                protect_scheduled_task_images=False,
                protect_batch_images=False,
                protect_lambda_images=False,
                protect_sage_maker_images=False,
                protect_code_build_images=False,
            )
            started = time.perf_counter()
            found = images_in_use(only_eks, target.client)
            seconds["read"].append(time.perf_counter() - started)
            references = sum(len(d) + len(t) for d, t in found.by_repository.values())
    finally:
        for child in (process, cluster):
            child.terminate()
            child.wait(timeout=30)
    without, with_cluster = (
        statistics.median(seconds["without"]),
        statistics.median(seconds["with"]),
    )
    return {
        "wallSeconds": round(with_cluster - without, 2),
        "sweepWithoutEksSeconds": round(without, 2),
        "sweepWithEksSeconds": round(with_cluster, 2),
        "clusterReadSeconds": round(statistics.median(seconds["read"]), 2),
        "pods": EKS_PODS,
        "referencesInUse": references,
        "rounds": {key: [round(v, 2) for v in values] for key, values in seconds.items()},
    }


BENCH_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
RECORDS_SCENARIO = "large:1000x5"


def largest_record() -> dict[str, Any]:
    """The largest record (in bytes, the encoded line as CloudWatch Logs counts it) the Lambda
    handler writes for a live sweep of 1,000 repositories: the run summary record lists every
    repository, so this is where a record could outgrow a log event (262,144 bytes). Every log
    line the handler writes is kept in memory and measured."""
    process, endpoint = emulator_process(Workload(RECORDS_SCENARIO))
    try:
        warm_up(AwsTarget(region="us-east-1", endpoint_url=endpoint))
        sweep = handler_sweep(endpoint)
        captured = io.StringIO()
        for stream_handler in logging.getLogger(metrics_catalog.SERVICE).handlers:
            if isinstance(stream_handler, logging.StreamHandler):
                stream_handler.stream = captured
        started = time.perf_counter()
        summary, _ = sweep(Workload(RECORDS_SCENARIO))
        wall = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=30)
    lines = captured.getvalue().splitlines()
    sizes = [len(line.encode()) for line in lines]
    largest = max(sizes)
    biggest = json.loads(lines[sizes.index(largest)])
    return {
        "wallSeconds": round(wall, 2),
        "largestRecordBytes": largest,
        "largestRecordEvent": biggest.get("event"),
        "largestRecordTrimmed": "recordTrimmed" in biggest,
        "limitBytes": RECORD_LIMIT_BYTES,
        "withinLimit": largest <= RECORD_LIMIT_BYTES,
        "records": len(lines),
        "repositories": summary["repositories"],
        "imagesDeleted": summary["imagesDeleted"],
    }


BENCHMARKS: dict[str, Callable[[], Any]] = {
    "plan 100k images in one repository": plan_one_big_repository,
    "plan 10k repositories x 10 images": plan_many_repositories,
    "evaluate 10-rule policy over 20k images": evaluate_complex_policy,
    "sweep 200x500 at 50 ms a call (dry run)": sweep_emulator(
        Workload("large:200x500", latency_ms=50, dry_run=True)
    ),
    "sweep 200x500 at 50 ms a call (live)": sweep_emulator(
        Workload("large:200x500", latency_ms=50)
    ),
    "sweep 200x500 at 50 ms a call, 20% throttled (live)": sweep_emulator(
        Workload("large:200x500", latency_ms=50, throttle_rate=0.2)
    ),
    "sweep 200x500 at 50 ms a call, Lambda handler (live)": sweep_emulator(
        Workload("large:200x500", latency_ms=50, through_handler=True)
    ),
    "sweep 1x25000 at 5 ms a call (live)": sweep_emulator(Workload("large:1x25000", latency_ms=5)),
    "sweep 1x100000 at 5 ms a call (live)": sweep_emulator(
        Workload("large:1x100000", latency_ms=5)
    ),
    "extra sweep time reading an EKS cluster of 2,000 pods": sweep_with_eks_cluster,
    "records: the largest a 1,000-repository run logs (Lambda handler)": largest_record,
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


def cpu_gauge() -> float:
    """Seconds a fixed pure-Python loop takes: how fast this machine was during the run. Shared
    2-core machines vary by half from hour to hour; compare figures at a similar gauge."""
    started = time.perf_counter()
    total = 0
    for number in range(10_000_000):
        total += number
    return round(time.perf_counter() - started, 2)


def results_file(*, record: bool) -> Path:
    return RECORDED if record else LAST_RUN


def main(only: str = "", *, record: bool = False) -> int:
    """Each benchmark in its own process, so peak memory is its own. `only` picks the
    benchmarks whose name contains it (`python -m bench --only 200x500`); `record` writes the
    tracked figures (all benchmarks only)."""
    gauge = cpu_gauge()
    print(f"CPU gauge: {gauge:.2f} s (a fixed pure-Python loop; lower is a faster machine)")
    results = []
    for name in [n for n in BENCHMARKS if only in n]:
        child = subprocess.run(
            [sys.executable, "-m", "bench", name], capture_output=True, text=True, check=True
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
        results.append(result)
        flag = "" if result["withinTarget"] else "  OVER TARGET"
        shown = ("name", "seconds", "peakRssMiB", "target", "withinTarget", "wallSeconds")
        extra = {k: v for k, v in result.items() if k not in shown}
        print(
            f"{name:52} {result['seconds']:7.2f} s (target {result['target']:.0f} s)  "
            f"peak RSS {result['peakRssMiB']:6.1f} MiB{flag}\n    {extra}",
            flush=True,
        )
    written = results_file(record=record)
    written.parent.mkdir(exist_ok=True)
    written.write_text(
        json.dumps(
            {"python": sys.version.split()[0], "cpuGaugeSeconds": gauge, "results": results},
            indent=2,
        )
    )
    print(f"written to {written}")
    return 0 if all(r["withinTarget"] for r in results) else 1


def cli(argv: list[str]) -> int:
    """`python -m bench [--only TEXT | --record]`, or a benchmark's own process."""
    if argv[:1] == ["--record"] and len(argv) == 1:
        return main(record=True)
    if len(argv) == 2 and argv[0] == "--only":
        return main(argv[1])
    if len(argv) == 1 and argv[0] in BENCHMARKS:
        return run_one(argv[0])
    if not argv:
        return main()
    print(
        "usage: python -m bench [--only TEXT | --record] (--record writes the tracked "
        f"{RECORDED.relative_to(RESULTS_DIRECTORY.parent.parent)}, all benchmarks only)",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
