"""`ecr-sweeper emulator` / `python -m local_ecr`: serve the emulator on 127.0.0.1 until stopped."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import datetime, timedelta

from local_ecr.clock import parse_timestamp
from local_ecr.scenarios import accepted_scenarios, parse_scenario
from local_ecr.server import LocalEcr


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port 0..65535 (0 = any free), got {text!r}")
    return int(text)


def _scenario(text: str) -> str:
    try:
        parse_scenario(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _when(text: str) -> datetime:
    try:
        return parse_timestamp(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port",
        type=_port,
        default=5000,
        help="port on 127.0.0.1 (default 5000; 0 picks a free one)",
    )
    parser.add_argument("--region", default="us-east-1", help="region seeded (default us-east-1)")
    parser.add_argument(
        "--scenario",
        type=_scenario,
        action="append",
        default=[],
        help=f"seed a scenario before serving; repeatable. Accepted: {accepted_scenarios()}",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed for scenarios/faults")
    parser.add_argument(
        "--now",
        type=_when,
        default=None,
        help="freeze the clock at this ISO 8601 time (default: real time)",
    )
    parser.add_argument(
        "--throttle-rate",
        type=_rate,
        default=0.0,
        help="share of calls answered with ThrottlingException (0..1)",
    )
    parser.add_argument(
        "--error-rate", type=_rate, default=0.0, help="share of calls answered with HTTP 500 (0..1)"
    )
    parser.add_argument(
        "--drop-rate",
        type=_rate,
        default=0.0,
        help="share of calls whose connection is dropped (0..1)",
    )
    parser.add_argument(
        "--fault-operations",
        default="",
        help="comma-separated operations the rates apply to (default: all)",
    )
    parser.add_argument(
        "--latency-ms",
        type=_non_negative,
        default=0.0,
        help="fixed latency added to every call, in milliseconds",
    )
    parser.add_argument(
        "--latency-jitter-ms",
        type=_non_negative,
        default=0.0,
        help="extra random latency, uniform 0..N milliseconds",
    )
    parser.add_argument(
        "--activation-delay-seconds",
        type=_non_negative,
        default=1200.0,
        help="how long a restored (UpdateImageStorageClass STANDARD) image stays ACTIVATING, in "
        "emulator-clock seconds (default 1200: ECR restores within 20 minutes)",
    )


def configure(ecr: LocalEcr, args: argparse.Namespace) -> None:
    """Apply the command line's clock, faults, latency, restore delay and scenarios to a started
    emulator."""
    if args.now is not None:
        ecr.clock.set(args.now)
    ecr.activation_delay = timedelta(seconds=args.activation_delay_seconds)
    operations = [each.strip() for each in args.fault_operations.split(",") if each.strip()]
    for operation in operations or [None]:
        if args.throttle_rate:
            ecr.faults.throttle(operation, rate=args.throttle_rate)
        if args.error_rate:
            ecr.faults.error(500, operation, rate=args.error_rate)
        if args.drop_rate:
            ecr.faults.drop_connection(operation, rate=args.drop_rate)
    if args.latency_ms or args.latency_jitter_ms:
        ecr.faults.latency(args.latency_ms / 1000, jitter=args.latency_jitter_ms / 1000)
    for scenario in args.scenario:
        result = ecr.seed(scenario, seed=args.seed)
        print(result.summary(), file=sys.stderr, flush=True)


def serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; print the endpoint URL on stdout once ready. Exit 0."""
    stop = threading.Event()
    try:
        ecr = LocalEcr(port=args.port, region=args.region, fault_seed=args.seed).start()
    except OSError as error:
        print(
            f"error: cannot listen on 127.0.0.1:{args.port}: {error.strerror or error}",
            file=sys.stderr,
        )
        return 2
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        configure(ecr, args)
        print(ecr.endpoint_url, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        ecr.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_ecr",
        description="Serve a local ECR (and every other moto service) on 127.0.0.1.",
    )
    add_arguments(parser)
    return serve(parser.parse_args(argv))
