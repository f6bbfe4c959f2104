"""What `make install` installs is locked: the SDK layer by version and SHA-256 (pip
--require-hashes), and the whole .venv (the CDK app, the CLI, the tests) by constraints.txt."""

from __future__ import annotations

import re
from importlib.metadata import distributions
from pathlib import Path

from infra.function import sdk_pins

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = {"pip", "setuptools", "wheel", "ecr-sweeper"}
"""What `python -m venv` and `pip install -e .` add themselves: not dependencies to lock."""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def constraints() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not name==version"
            pins[canonical(name)] = version
    return pins


def test_every_layer_requirement_is_pinned_with_its_hash() -> None:
    text = (ROOT / "requirements-lambda.txt").read_text(encoding="utf-8")
    pins = sdk_pins()
    assert len(pins) == 7
    for name, version in pins.items():
        hashed = rf"^{re.escape(name)}=={re.escape(version)} \\\n +--hash=sha256:[0-9a-f]{{64}}$"
        assert re.search(hashed, text, re.MULTILINE), f"{name} has no sha256 hash"


def test_the_venv_uses_the_layers_sdk_versions() -> None:
    locked = constraints()
    for name, version in sdk_pins().items():
        assert locked.get(canonical(name)) == version, (
            f"constraints.txt pins {name} {locked.get(canonical(name))}, the layer {version}"
        )


def test_the_venv_holds_exactly_the_locked_versions() -> None:
    """A dependency added without locking it fails here: run `make lock`."""
    locked = constraints()
    installed = {canonical(d.metadata["Name"]): d.version for d in distributions()}
    unlocked = {
        name: version
        for name, version in installed.items()
        if name not in BOOTSTRAP and locked.get(name) != version
    }
    assert not unlocked, f"installed but not locked at this version (run `make lock`): {unlocked}"
