"""`make bench` leaves the working tree clean; only `make bench-record` rewrites the tracked
figures the README quotes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "bench" / "results" / "latest.json"
LAST_RUN = ROOT / "bench" / "results" / "last-run.json"


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true"}
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_bench_run_writes_an_ignored_file_and_leaves_the_tracked_figures_alone() -> None:
    assert _git("check-ignore", "-q", str(LAST_RUN)).returncode == 0, "last-run.json is ignored"
    assert _git("ls-files", "--error-unmatch", str(RECORDED)).returncode == 0, "latest is tracked"
    recorded = RECORDED.read_bytes()
    run = _bench("--only", "no benchmark has this in its name")
    assert run.returncode == 0, run.stderr
    assert f"written to {LAST_RUN}" in run.stdout
    assert json.loads(LAST_RUN.read_text())["results"] == []
    assert RECORDED.read_bytes() == recorded


def test_recording_is_on_purpose_and_whole() -> None:
    refused = _bench("--record", "--only", "200x500")
    assert refused.returncode == 2 and "--record" in refused.stderr
    makefile = (ROOT / "Makefile").read_text()
    assert "\nbench-record: install\n\t$(OFFLINE) $(PY) -m bench --record\n" in makefile
    assert "\nbench: install\n\t$(OFFLINE) $(PY) -m bench\n" in makefile
