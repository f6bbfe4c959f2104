"""Every table reads at 100 columns and stays legible at 80: the CLI on a pseudo-terminal whose
width `stty cols` sets, as a newcomer's terminal would have it."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shlex
import subprocess
import time

import pytest
from test_sweeper_cli import CLI, ROOT, run_cli

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_terminal(columns: int, *args: str) -> tuple[int, list[str]]:
    """Run the CLI with stdin, stdout and stderr on a pty `columns` wide (set with stty, and
    no COLUMNS in the environment); its output lines without colours."""
    controller, terminal = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_"))}
    environment.pop("COLUMNS", None)
    environment.pop("LINES", None)
    environment.update(
        TERM="xterm-256color", AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
    )  # fmt: skip
    command = f"stty cols {columns} rows 50 && exec {shlex.join([str(CLI), *args])}"
    process = subprocess.Popen(
        ["bash", "-c", command],
        cwd=ROOT,
        env=environment,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    output, deadline = b"", time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    os.close(controller)
    text = ANSI.sub("", output.decode(errors="replace")).replace("\r", "")
    lines = [line for line in text.splitlines() if "images seen" not in line]  # progress
    return process.wait(timeout=30), lines


@pytest.mark.parametrize("columns", [80, 100, 160])
def test_the_demo_fits_the_terminal_and_cuts_no_number(columns: int) -> None:
    code, lines = on_terminal(columns, "demo")
    assert code == 0, "\n".join(lines)
    text = "\n".join(lines)
    assert max(len(line) for line in lines) <= columns, text
    assert "…" not in text, "nothing is cut: numbers stay whole, text folds"
    summary = lines[lines.index(next(line for line in lines if line.startswith("repository "))) :]
    rows = {line.split()[0]: line for line in summary if "│" in line}
    assert set(rows) == {"web", "worker", "api"}
    for name, size in (("web", "1.2 GB"), ("worker", "360.7 MB"), ("api", "37.0 MB")):
        assert rows[name].rstrip().endswith(size), rows[name]
    assert "deleted 11 images (1.6 GB), kept 38; failures: 0" in text
    assert len(lines) <= 135, "the demo took 331 lines at 80 columns"
    if columns >= 100:
        header = next(line for line in summary if line.startswith("repository "))
        assert "kept: policy" in header and "index child" in header, "the kept split has room"
    else:
        assert "kept: 25 policy, 7 index child, 1 referrer, 1 protected tag" in text
    decisions = [line for line in lines if line.startswith(("keep ", "delete "))]
    assert len(decisions) == 49, "every decision is one row, however it folds"
    if columns < 140:
        assert "Rules: 1: untagged images older than 1 day; 2: keep the newest 10" in text


@pytest.mark.parametrize("columns", [80, 100, 160])
def test_a_failure_s_whole_reason_is_printed_once_below_the_table(columns: int) -> None:
    """An unreachable endpoint: the table says what failed, stderr the whole reason, once."""
    code, lines = on_terminal(
        columns, "plan", "--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"
    )
    text = "\n".join(lines)
    assert code == 1, text
    reason = 'Could not connect to the endpoint URL: "http://127.0.0.1:9/"'
    assert " ".join(text.split()).count(reason) == 1, text
    assert text.index("failures: 1") < text.index("could not list repositories")
    assert max(len(line) for line in lines) <= columns, text


def test_piped_output_keeps_the_wide_layout() -> None:
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    assert "kept: policy" in result.stdout
    assert json.dumps("…") not in result.stdout and "…" not in result.stdout
