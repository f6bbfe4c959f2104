"""app.py's own exit paths that `cdk synth` can't easily provoke (see test_cdk_cli_synth.py for
the settings error and `-c` overrides through the real CLI)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import aws_cdk as cdk
import pytest


def _main(project_root: Path) -> Callable[[], int]:
    spec = importlib.util.spec_from_file_location("ecr_sweeper_app", project_root / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    main: Callable[[], int] = module.main
    return main


def test_app_exits_1_with_one_line_when_compliance_checks_fail(
    project_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(cdk.Validations, "acknowledge", lambda self, *rules: None)
    assert _main(project_root)() == 1
    error = capsys.readouterr().err
    assert error.startswith("ecr-sweeper: compliance checks failed; ValidationFailed")
    assert "Traceback" not in error
