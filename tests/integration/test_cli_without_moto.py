"""The installed CLI without the optional `local` extra: moto can't be imported at all.

A sitecustomize on PYTHONPATH puts a finder first on sys.meta_path that refuses moto, as if it
were not installed. `plan` and `--help` work; `emulator` and `demo` say how to install it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ecr_sweeper_cli.local_extra import INSTALL_HINT
from local_ecr import LocalEcr

BLOCKER = '''
import sys


class _NotInstalled:
    """Refuse moto as if it were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "moto" or name.startswith("moto."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
'''

CLI = Path(sys.executable).parent / "ecr-sweeper"


@pytest.fixture
def without_moto(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    return {**os.environ, "PYTHONPATH": str(tmp_path)}


def run(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args], env=environment, capture_output=True, text=True, timeout=120
    )


def test_the_blocker_really_hides_moto(without_moto: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import moto"], env=without_moto, capture_output=True, text=True
    )
    assert done.returncode == 1 and "No module named 'moto'" in done.stderr


def test_help_lists_every_command(without_moto: dict[str, str]) -> None:
    done = run(without_moto, "--help")
    assert done.returncode == 0, done.stderr
    for command in ("plan", "sweep", "evaluate", "emulator", "demo"):
        assert command in done.stdout


def test_plan_works_against_any_endpoint(without_moto: dict[str, str], local_ecr: LocalEcr) -> None:
    local_ecr.client("ecr").create_repository(repositoryName="web")
    environment = {**without_moto, **{k: v for k, v in os.environ.items() if k.startswith("AWS_")}}
    done = run(
        environment,
        "plan",
        "--endpoint-url",
        local_ecr.endpoint_url,
        "--region",
        local_ecr.region,
        "--output",
        "json",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["dryRun"] is True


@pytest.mark.parametrize(
    ("command", "arguments"),
    [("emulator", ["--port", "0", "--scenario", "demo"]), ("demo", ["--scenario", "ci"])],
)
def test_local_commands_say_how_to_install_the_extra(
    without_moto: dict[str, str], command: str, arguments: list[str]
) -> None:
    done = run(without_moto, command, *arguments)
    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"ecr-sweeper: ecr-sweeper {command} needs the local ECR")
    assert "'moto'" in line and INSTALL_HINT in line


def test_other_commands_still_refuse_unknown_arguments(without_moto: dict[str, str]) -> None:
    done = run(without_moto, "plan", "--bogus")
    assert done.returncode == 2 and "unrecognized arguments: --bogus" in done.stderr
