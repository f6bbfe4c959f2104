"""What `plan`, `sweep` and `demo` print: a summary that fits a screen, progress on a terminal only,
and the effective policy in words."""

from __future__ import annotations

import json
import os
import pty
import random
import re
import select
import subprocess
import time
from pathlib import Path

from helpers.sweep import push, remaining
from test_sweeper_cli import CLI, ROOT, run_cli, target

from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory

DIGEST_CELL = re.compile(r"│ ([0-9a-f]{12}) │")


def test_the_plan_of_60_by_40_fits_a_screen_and_details_list_every_image(
    local_ecr: LocalEcr,
) -> None:
    local_ecr.seed("ci:60x40")
    summary = run_cli("plan", *target(local_ecr))
    assert summary.returncode == 0, summary.stderr
    lines = summary.stdout.splitlines()
    assert len(lines) < 90, summary.stdout
    rows = [line for line in lines if line.startswith("ci-service-") and "│" in line]
    assert len(rows) == 60
    header = next(line for line in lines if line.startswith("repository ")).split("┃")
    size_column = [cell.strip() for cell in header].index("to reclaim")
    sizes = [_bytes(row.split("│")[size_column]) for row in rows]
    assert sizes == sorted(sizes, reverse=True), "rows are sorted by reclaimable size"
    assert "Estimated saving: $" in summary.stdout and "Top repositories by" in summary.stdout
    assert summary.stderr == "", "piped: no progress output"

    details = run_cli("plan", *target(local_ecr), "--details")
    assert details.returncode == 0, details.stderr
    assert len(DIGEST_CELL.findall(details.stdout)) == 2400
    actions = [line.split()[0] for line in details.stdout.splitlines() if "│" in line]
    assert actions.count("delete") + actions.count("keep") == 2400


def _bytes(text: str) -> float:
    number, unit = text.split()
    return float(number) * {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}[unit]


def _seed_repositories(local_ecr: LocalEcr) -> None:
    make = ManifestFactory(random.Random(11))
    for repository in ("web-a", "web-b", "web-secret", "api"):
        for number in range(3):
            push(local_ecr, repository, make.image(compact=True), None, 10 + number)
    push(local_ecr, "idle", make.image(compact=True), "v1", 3)


def _planned(local_ecr: LocalEcr, *args: str) -> list[str]:
    result = run_cli("plan", *target(local_ecr), "--output", "json", *args)
    assert result.returncode == 0, result.stderr
    return sorted(r["repository"] for r in json.loads(result.stdout)["perRepository"])


def test_repository_narrows_within_the_settings_and_never_past_the_excludes(
    local_ecr: LocalEcr,
) -> None:
    _seed_repositories(local_ecr)
    exclude = ("-c", "excludeRepositories=web-secret")
    assert _planned(local_ecr, *exclude) == ["api", "idle", "web-a", "web-b"]
    assert _planned(local_ecr, *exclude, "--repository", "web-*") == ["web-a", "web-b"]
    within = ("-c", "includeRepositories=web-*")
    assert _planned(local_ecr, *within, "--repository", "*") == ["web-a", "web-b", "web-secret"]

    bad = run_cli("plan", *target(local_ecr), "--repository", "Web_A")
    assert (
        bad.returncode == 2
        and "--repository 'Web_A': expected a repository name or pattern" in bad.stderr
    )
    tangled = run_cli("plan", *target(local_ecr), *within, "--repository", "*-a")
    assert tangled.returncode == 2
    assert "--repository '*-a': can't be combined with includeRepositories" in tangled.stderr


def test_the_totals_show_the_monthly_saving_at_the_configured_price(local_ecr: LocalEcr) -> None:
    _seed_repositories(local_ecr)
    price = ("-c", "storagePricePerGbMonth=2.5")
    planned = run_cli("plan", *target(local_ecr), "--output", "json", *price)
    expired = json.loads(planned.stdout)["bytesExpired"]
    shown = run_cli("plan", *target(local_ecr), *price)
    saving = expired / 1e9 * 2.5
    assert f"Estimated saving: ${saving:,.2f} per month (at $2.50 per GB-month)" in shown.stdout
    assert "1 repository with nothing to do (1 image, all kept): idle" in shown.stdout


def _under_pty(
    args: list[str], answer: str | None = None, *, all_streams: bool = False
) -> tuple[int, str]:
    """Run the CLI with stderr (and, if asked, stdin and stdout) on a pseudo-terminal."""
    controller, terminal = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_")}
    environment.update(
        TERM="xterm-256color", COLUMNS="160", LINES="50",
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )  # fmt: skip
    environment.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [str(CLI), *args],
        cwd=ROOT,
        env=environment,
        stdin=terminal if all_streams else subprocess.DEVNULL,
        stdout=terminal if all_streams else subprocess.DEVNULL,
        stderr=terminal,
    )
    os.close(terminal)
    output, answered, deadline = b"", False, time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: the process is done
                break
            if not chunk:
                break
            output += chunk
            if answer is not None and not answered and b"Type 'yes'" in output:
                os.write(controller, answer.encode() + b"\n")
                answered = True
        elif process.poll() is not None:
            break
    os.close(controller)
    return process.wait(timeout=30), output.decode(errors="replace")


def test_progress_is_drawn_on_a_terminal_and_never_into_a_pipe(local_ecr: LocalEcr) -> None:
    local_ecr.seed("ci:6x10")
    code, drawn = _under_pty(["plan", *target(local_ecr)])
    assert code == 0, drawn
    assert "\x1b[?25l" in drawn, "rich's live display hides the cursor while it draws"
    assert "\x1b[2K" in drawn, "and erases its lines when done (transient)"
    assert "repositories" in drawn and "60 images seen" in drawn and "6/" in drawn

    piped = run_cli("plan", *target(local_ecr))
    assert piped.returncode == 0 and piped.stderr == ""
    assert "\x1b[" not in piped.stdout


def test_sweep_on_a_terminal_asks_with_the_summary(local_ecr: LocalEcr) -> None:
    make = ManifestFactory(random.Random(2))
    for number in range(14):
        push(local_ecr, "web", make.image(compact=True), f"v{number}", 30 - number)
    before = remaining(local_ecr, "web")
    code, shown = _under_pty(["sweep", *target(local_ecr)], answer="no", all_streams=True)
    assert code == 0, shown
    assert "Delete 4 images? Type 'yes' to continue" in shown
    assert "to delete" in shown and "Estimated saving" in shown
    assert "among the newest 10" not in shown, "no per-image rows without --details"
    assert "Nothing deleted." in shown
    assert remaining(local_ecr, "web") == before


def test_the_demo_banner_describes_the_lifecycle_policy_in_force(tmp_path: Path) -> None:
    policy = {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {
                    "tagStatus": "tagged",
                    "tagPrefixList": ["pr-"],
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            }
        ]
    }
    config = tmp_path / "cdk.json"
    context = {"lifecyclePolicy": policy, "protectedTags": []}
    config.write_text(json.dumps({"context": context}))
    result = run_cli("demo", "--config", str(config))
    assert result.returncode in (0, 1), result.stderr
    banner = result.stdout.split("\n\n")[0]
    assert "Policy from the lifecyclePolicy setting" in banner
    assert "rule 1: delete images with tags starting with 'pr-' pushed more than 1 day ago" in (
        " ".join(result.stdout.split())
    )
    assert "keep the newest" not in result.stdout.split("rule 1:")[0]
    assert (
        not re.search(r"(?<![0-9.])1 days", result.stdout) and "protect tags ." not in result.stdout
    )
    assert "images tagged" not in result.stdout.split("never deleted:")[1].splitlines()[0]
