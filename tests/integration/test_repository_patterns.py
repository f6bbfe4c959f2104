"""`--repository` that selects nothing says so, and why, instead of exiting 0 with "0
repositories"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecr_sweeper_cli.main import main
from local_ecr import LocalEcr

ROOT = Path(__file__).resolve().parents[2]


def plan(
    local_ecr: LocalEcr, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, str]:
    code = main(
        [
            "plan",
            "--endpoint-url",
            local_ecr.endpoint_url,
            "--region",
            local_ecr.region,
            "--config",
            str(ROOT / "cdk.json"),
            *extra,
        ]
    )
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def registry(local_ecr: LocalEcr) -> LocalEcr:
    for name in ("web-api", "web-ui", "legacy/old", "tools/ci"):
        local_ecr.client("ecr").create_repository(repositoryName=name)
    return local_ecr


def test_a_repository_that_does_not_exist_exits_2_with_a_did_you_mean(
    registry: LocalEcr, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = plan(registry, capsys, "--repository", "web-apj")
    assert code == 2 and out == ""
    assert err == (
        "ecr-sweeper: --repository 'web-apj': no repository matches it (the registry has 4); "
        "did you mean 'web-api'?\n"
    )


def test_a_pattern_matching_only_excluded_repositories_names_the_patterns(
    registry: LocalEcr, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = ("-c", "excludeRepositories=legacy/*", "-c", "includeRepositories=web-*,legacy/*")
    code, out, err = plan(registry, capsys, *settings, "--repository", "legacy/old")
    assert code == 2 and out == ""
    assert err == (
        "ecr-sweeper: --repository 'legacy/old': it matches only repositories the settings "
        "leave out: legacy/old (excludeRepositories pattern 'legacy/*')\n"
    )
    code, _, err = plan(registry, capsys, *settings, "--repository", "tools/*")
    assert code == 2
    assert "tools/ci (not in includeRepositories 'web-*', 'legacy/*')" in err


def test_one_unmatched_pattern_among_others_is_a_warning_and_the_rest_is_planned(
    registry: LocalEcr, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = plan(
        registry, capsys, "--output", "json", "--repository", "web-*", "--repository", "nope"
    )
    assert code == 0
    assert sorted(r["repository"] for r in json.loads(out)["perRepository"]) == [
        "web-api",
        "web-ui",
    ]
    assert err.startswith("ecr-sweeper: warning: --repository 'nope': no repository matches it")
