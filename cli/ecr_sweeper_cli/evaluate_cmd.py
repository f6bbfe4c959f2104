"""`ecr-sweeper evaluate`: apply a lifecycle policy to a saved `aws ecr describe-images` listing.

Offline and policy-only (no protections): it shows what ECR itself would expire.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from ecr_sweeper.core.evaluate import evaluate_documents
from ecr_sweeper.core.lifecycle import PolicyError
from ecr_sweeper.core.model import ImageDetailError

STDIN = "-"


class _BadInput(Exception):
    """One line for stderr; the command exits 2."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="show which images a lifecycle policy expires, offline",
        description=(
            "Apply an ECR lifecycle policy to the output of `aws ecr describe-images` and print "
            "JSON: the expired and transitioned (archived) digests and a decision with a reason "
            "for every image. Applies the policy only (no protected tags or other safety "
            "rules): it reproduces what ECR would expire or archive. List with `--filter "
            "imageStatus=ANY` to include archived images. Use '-' to read one of the two files "
            "from stdin."
        ),
    )
    parser.add_argument(
        "--policy",
        required=True,
        metavar="POLICY.json",
        help="lifecycle policy document, or the object `aws ecr get-lifecycle-policy` prints",
    )
    parser.add_argument(
        "--images",
        required=True,
        metavar="IMAGES.json",
        help="what `aws ecr describe-images [--filter imageStatus=ANY]` prints, or a list of "
        "ImageDetail objects",
    )
    parser.add_argument(
        "--now",
        metavar="TIMESTAMP",
        help="evaluate as of this ISO-8601 time (default: now, UTC; no offset means UTC)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        if args.policy == STDIN and args.images == STDIN:
            raise _BadInput("--policy and --images can't both be '-' (stdin is read once)")
        now = _parse_now(args.now)
        policy_text = _read(args.policy)
        _load(policy_text, args.policy)  # a JSON error names the file, not the policy text
        images_document = _load(_read(args.images), args.images)
        result = _evaluate(policy_text, images_document, now, args)
    except _BadInput as error:
        print(f"ecr-sweeper evaluate: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


def _evaluate(
    policy_text: str, images_document: Any, now: datetime, args: argparse.Namespace
) -> dict[str, Any]:
    """Policy text goes in as read, so its length is checked as ECR would check it."""
    try:
        return evaluate_documents(policy_text, images_document, now)
    except PolicyError as error:
        raise _BadInput(f"{_name(args.policy)}: invalid lifecycle policy: {error}") from None
    except ImageDetailError as error:
        raise _BadInput(f"{_name(args.images)}: bad image listing: {error}") from None
    except RecursionError:
        raise _BadInput(
            f"{_name(args.policy)} or {_name(args.images)}: JSON nested too deeply"
        ) from None


def _name(path: str) -> str:
    return "<stdin>" if path == STDIN else path


def _read(path: str) -> str:
    try:
        if path == STDIN:
            return sys.stdin.read()
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as error:
        raise _BadInput(f"{path}: can't read it ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise _BadInput(f"{_name(path)}: not UTF-8 text") from None


def _load(text: str, path: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _BadInput(f"{_name(path)}: not valid JSON ({error})") from None
    except RecursionError:
        raise _BadInput(f"{_name(path)}: JSON nested too deeply") from None


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _BadInput(
            f"--now: {value!r} is not an ISO-8601 timestamp, e.g. 2026-06-01T12:00:00+00:00"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
