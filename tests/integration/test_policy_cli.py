"""`ecr-sweeper policy plan|apply` against the local ECR: one native policy across the registry."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from helpers.sweep import push
from test_sweeper_cli import run_on_terminal

from ecr_sweeper.core import lifecycle
from ecr_sweeper.sweep.native_policy import policy_text
from ecr_sweeper_cli.main import main
from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory

ROOT = Path(__file__).resolve().parents[2]

WANTED: dict[str, Any] = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "untagged after 3 days",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 3,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": ["*"],
                "countType": "imageCountMoreThan",
                "countNumber": 2,
            },
            "action": {"type": "expire"},
        },
    ]
}

REFORMATTED = """{ "rules": [
  {"action": {"type": "expire"}, "selection": {"countNumber": 2, "countType": "imageCountMoreThan",
   "tagPatternList": ["*"], "tagStatus": "tagged"}, "description": "", "rulePriority": 2},
  {"selection": {"countUnit": "days", "tagStatus": "untagged", "countNumber": 3,
   "countType": "sinceImagePushed"}, "rulePriority": 1, "description": "untagged after 3 days",
   "action": {"type": "expire"}}
]}"""
"""WANTED with keys, rules and whitespace reordered and an empty description: the same policy."""

TUNED: dict[str, Any] = {
    "rules": [
        {
            "rulePriority": 1,
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 30,
            },
            "action": {"type": "expire"},
        }
    ]
}


def policy_cli(
    local_ecr: LocalEcr,
    capsys: pytest.CaptureFixture[str],
    action: str,
    policy: Path,
    *extra: str,
) -> tuple[int, str, str]:
    """Run `ecr-sweeper policy ACTION` in this process; (exit code, stdout, stderr)."""
    code = main(
        [
            "policy",
            action,
            "--policy",
            str(policy),
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


def as_json(
    local_ecr: LocalEcr,
    capsys: pytest.CaptureFixture[str],
    action: str,
    policy: Path,
    *extra: str,
) -> tuple[int, dict[str, Any]]:
    code, out, err = policy_cli(local_ecr, capsys, action, policy, "--output", "json", *extra)
    assert "Traceback" not in err
    return code, json.loads(out)


def by_repository(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["repository"]: entry for entry in document["repositories"]}


def stored_policy(local_ecr: LocalEcr, repository: str) -> str | None:
    client = local_ecr.client("ecr")
    try:
        return str(client.get_lifecycle_policy(repositoryName=repository)["lifecyclePolicyText"])
    except client.exceptions.LifecyclePolicyNotFoundException:
        return None


def put_policy(local_ecr: LocalEcr, repository: str, text: str) -> None:
    ecr = local_ecr.client("ecr")
    ecr.put_lifecycle_policy(repositoryName=repository, lifecyclePolicyText=text)


@pytest.fixture
def wanted_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(WANTED, indent=4))
    return path


def three_repositories(local_ecr: LocalEcr) -> None:
    """fresh: no policy; tuned: another policy; same: WANTED, reformatted."""
    make = ManifestFactory(random.Random(7))
    for days in (10, 8, 1):
        push(local_ecr, "fresh", make.image(compact=True), None, days)
    for number in range(4):
        push(local_ecr, "fresh", make.image(compact=True), f"v{number}", 20 - number)
    push(local_ecr, "tuned", make.image(compact=True), None, 10)
    push(local_ecr, "tuned", make.image(compact=True), None, 40)
    local_ecr.client("ecr").create_repository(repositoryName="same")
    put_policy(local_ecr, "tuned", json.dumps(TUNED))
    put_policy(local_ecr, "same", REFORMATTED)


def test_plan_shows_create_update_unchanged_and_writes_nothing(
    local_ecr: LocalEcr, capsys: pytest.CaptureFixture[str], wanted_file: Path
) -> None:
    three_repositories(local_ecr)
    local_ecr.reset_counters()
    code, document = as_json(local_ecr, capsys, "plan", wanted_file)
    assert code == 0
    assert local_ecr.calls["PutLifecyclePolicy"] == 0
    assert set(document) == {"repositories", "created", "updated", "unchanged", "skipped", "failed"}
    assert (document["created"], document["updated"], document["unchanged"]) == (1, 1, 1)
    assert (document["skipped"], document["failed"]) == (0, 0)
    entries = by_repository(document)
    fresh, tuned, same = entries["fresh"], entries["tuned"], entries["same"]
    assert fresh["change"] == "create" and fresh["currentWouldExpire"] is None
    assert fresh["wouldExpire"] == 4, "two untagged older than 3 days, two tagged beyond 2"
    assert tuned["change"] == "update"
    assert (tuned["wouldExpire"], tuned["currentWouldExpire"]) == (2, 1)
    assert any(line.startswith("-") and "30" in line for line in tuned["diff"])
    assert same["change"] == "unchanged" and same["diff"] == [] and same["error"] is None
    for entry in entries.values():
        assert list(entry)[:6] == [
            "repository",
            "change",
            "wouldExpire",
            "currentWouldExpire",
            "warnings",
            "error",
        ]
    assert stored_policy(local_ecr, "fresh") is None
    assert stored_policy(local_ecr, "tuned") == json.dumps(TUNED)

    code, table, _ = policy_cli(local_ecr, capsys, "plan", wanted_file)
    assert code == 0
    assert "DRY RUN" in table and "1 would be created, 1 would be updated, 1 unchanged" in table
    assert '-        "countNumber": 30' in table and '+        "countNumber": 3' in table


def test_apply_writes_only_what_differs_and_a_second_apply_writes_nothing(
    local_ecr: LocalEcr, capsys: pytest.CaptureFixture[str], wanted_file: Path
) -> None:
    three_repositories(local_ecr)
    local_ecr.reset_counters()
    code, document = as_json(local_ecr, capsys, "apply", wanted_file, "--yes")
    assert code == 0
    assert (document["created"], document["updated"], document["unchanged"]) == (1, 1, 1)
    assert local_ecr.calls["PutLifecyclePolicy"] == 2
    canonical = policy_text(lifecycle.parse_policy(WANTED))
    assert stored_policy(local_ecr, "fresh") == canonical
    assert stored_policy(local_ecr, "tuned") == canonical
    assert stored_policy(local_ecr, "same") == REFORMATTED, "an equal policy is left as it is"

    local_ecr.reset_counters()
    code, again = as_json(local_ecr, capsys, "apply", wanted_file, "--yes")
    assert code == 0
    assert local_ecr.calls["PutLifecyclePolicy"] == 0
    assert local_ecr.calls["GetLifecyclePolicy"] == 3
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)


def test_exclusions_and_skip_tags_select_repositories_as_the_sweep_does(
    local_ecr: LocalEcr, capsys: pytest.CaptureFixture[str], wanted_file: Path
) -> None:
    ecr = local_ecr.client("ecr")
    ecr.create_repository(repositoryName="team/api")
    ecr.create_repository(repositoryName="legacy/old")
    ecr.create_repository(
        repositoryName="team/hands-off", tags=[{"Key": "ecr-sweeper:skip", "Value": "true"}]
    )
    ecr.create_repository(
        repositoryName="team/typo", tags=[{"Key": "ecr-sweeper:skipp", "Value": "true"}]
    )
    code, document = as_json(
        local_ecr, capsys, "apply", wanted_file, "--yes", "-c", "excludeRepositories=legacy/*"
    )
    assert code == 0
    entries = by_repository(document)
    assert set(entries) == {"team/api", "team/hands-off", "team/typo"}
    assert entries["team/api"]["change"] == "create"
    assert entries["team/hands-off"]["change"] == "skipped"
    assert entries["team/hands-off"]["reason"] == "tagged ecr-sweeper:skip=true"
    assert entries["team/typo"]["change"] == "skipped"
    assert "unknown override tag 'ecr-sweeper:skipp'" in entries["team/typo"]["reason"]
    assert document["skipped"] == 2 and document["created"] == 1
    assert local_ecr.calls["PutLifecyclePolicy"] == 1
    for untouched in ("legacy/old", "team/hands-off", "team/typo"):
        assert stored_policy(local_ecr, untouched) is None


def test_an_invalid_policy_file_exits_2_with_the_reason_and_writes_nothing(
    local_ecr: LocalEcr, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    local_ecr.client("ecr").create_repository(repositoryName="web")
    bad = tmp_path / "bad.json"
    rules = json.loads(json.dumps(WANTED["rules"]))
    rules[1]["selection"]["countType"] = "sinceImagePushed"
    bad.write_text(json.dumps({"rules": rules}))
    code, out, err = policy_cli(local_ecr, capsys, "apply", bad, "--yes")
    assert code == 2 and out == ""
    assert err.startswith(f"ecr-sweeper: --policy {bad}: rule 2 (rulePriority 2): selection.")
    assert "countUnit" in err and len(err.strip().splitlines()) == 1
    not_json = tmp_path / "not.json"
    not_json.write_text("{rules: []}")
    code, _, err = policy_cli(local_ecr, capsys, "plan", not_json)
    assert code == 2 and "policy text: not valid JSON" in err
    code, _, err = policy_cli(local_ecr, capsys, "plan", tmp_path / "missing.json")
    assert code == 2 and "missing.json: can't read it (No such file or directory)" in err
    assert local_ecr.calls["PutLifecyclePolicy"] == 0
    assert stored_policy(local_ecr, "web") is None


def test_a_policy_ecr_would_refuse_exits_2_in_plan_and_apply_before_any_call(
    local_ecr: LocalEcr, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """sinceImagePulled with expire is our evaluator's extension; PutLifecyclePolicy refuses it,
    so plan must not show `create` for it and apply must not try it on every repository."""
    for name in ("web", "api"):
        local_ecr.client("ecr").create_repository(repositoryName=name)
    pulled = tmp_path / "pulled.json"
    rules = json.loads(json.dumps(WANTED["rules"]))
    rules[0]["selection"] = rules[0]["selection"] | {"countType": "sinceImagePulled"}
    pulled.write_text(json.dumps({"rules": rules}))
    local_ecr.reset_counters()
    for action in ("plan", "apply"):
        extra = ("--yes",) if action == "apply" else ()
        code, out, err = policy_cli(local_ecr, capsys, action, pulled, *extra)
        assert code == 2 and out == "", action
        assert err.startswith(f"ecr-sweeper: --policy {pulled}: rule 1 (rulePriority 1): ")
        assert "PutLifecyclePolicy accepts sinceImagePulled only with" in err
        assert len(err.strip().splitlines()) == 1
    assert sum(local_ecr.calls.values()) == 0, "refused before any AWS call"
    assert stored_policy(local_ecr, "web") is None and stored_policy(local_ecr, "api") is None


def test_without_a_terminal_apply_needs_yes(
    local_ecr: LocalEcr, capsys: pytest.CaptureFixture[str], wanted_file: Path
) -> None:
    local_ecr.client("ecr").create_repository(repositoryName="web")
    code, _, err = policy_cli(local_ecr, capsys, "apply", wanted_file)
    assert code == 2 and "refusing to write lifecycle policies without --yes" in err
    assert stored_policy(local_ecr, "web") is None


def in_use_registry(local_ecr: LocalEcr) -> str:
    """`web` has four tagged images; ECS runs the oldest, v0, which WANTED would expire."""
    make = ManifestFactory(random.Random(11))
    digests = [push(local_ecr, "web", make.image(compact=True), f"v{n}", 30 - n) for n in range(4)]
    push(local_ecr, "api", make.image(compact=True), "v1", 3)
    image = f"123456789012.dkr.ecr.{local_ecr.region}.amazonaws.com/web:v0"
    ecs = local_ecr.client("ecs")
    ecs.create_cluster(clusterName="prod")
    definition = ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "web", "image": image, "memory": 64}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.run_task(cluster="prod", taskDefinition=definition, launchType="FARGATE")
    return digests[0]


def test_in_use_images_are_warned_about_and_protect_in_use_skips_the_repository(
    local_ecr: LocalEcr, capsys: pytest.CaptureFixture[str], wanted_file: Path
) -> None:
    digest = in_use_registry(local_ecr)
    code, plan = as_json(local_ecr, capsys, "plan", wanted_file)
    assert code == 0
    web = by_repository(plan)["web"]
    assert web["change"] == "skipped" and web["wouldExpire"] == 2
    assert web["reason"] == (
        "the policy would expire what the sweep keeps (1 warning(s)); --force writes it anyway"
    )
    (warning,) = web["warnings"]
    assert warning.startswith(f"v0 ({digest}): the policy would expire it, but it is in use by")
    assert by_repository(plan)["api"]["warnings"] == []
    assert by_repository(plan)["api"]["change"] == "create"

    code, protected = as_json(local_ecr, capsys, "apply", wanted_file, "--yes", "--protect-in-use")
    assert code == 0
    entries = by_repository(protected)
    assert entries["web"]["change"] == "skipped"
    assert entries["web"]["reason"] == "--protect-in-use: the policy would expire 1 image(s) in use"
    assert entries["api"]["change"] == "create"
    assert stored_policy(local_ecr, "web") is None

    code, refused = as_json(local_ecr, capsys, "apply", wanted_file, "--yes")
    assert code == 0
    assert by_repository(refused)["web"]["change"] == "skipped"
    assert stored_policy(local_ecr, "web") is None, "apply refuses it without --force"

    code, applied = as_json(local_ecr, capsys, "apply", wanted_file, "--yes", "--force")
    assert code == 0
    assert by_repository(applied)["web"]["change"] == "create"
    assert by_repository(applied)["web"]["warnings"] == [warning]
    assert stored_policy(local_ecr, "web") is not None


def test_one_failing_repository_among_many_fails_alone(
    local_ecr: LocalEcr, capsys: pytest.CaptureFixture[str], wanted_file: Path
) -> None:
    names = [f"service-{n:02d}" for n in range(12)]
    for name in names:
        local_ecr.client("ecr").create_repository(repositoryName=name)
    local_ecr.reset_counters()
    # A 400 botocore doesn't retry, on exactly one PutLifecyclePolicy of the concurrent run.
    local_ecr.faults.throttle("PutLifecyclePolicy", code="AccessDeniedException", on_calls=[5])
    code, document = as_json(local_ecr, capsys, "apply", wanted_file, "--yes", "--concurrency", "4")
    assert code == 1
    assert (document["failed"], document["created"]) == (1, 11)
    (failed,) = [e for e in document["repositories"] if e["change"] == "failed"]
    assert failed["error"] == "AccessDeniedException"
    assert stored_policy(local_ecr, failed["repository"]) is None
    for name in names:
        if name != failed["repository"]:
            assert stored_policy(local_ecr, name) is not None
    local_ecr.faults.clear()
    code, again = as_json(local_ecr, capsys, "apply", wanted_file, "--yes")
    assert code == 0 and (again["created"], again["unchanged"]) == (1, 11)


def test_the_sweeps_plan_warns_where_the_native_policy_would_expire_what_it_keeps(
    local_ecr: LocalEcr, capsys: pytest.CaptureFixture[str]
) -> None:
    """The repository's own policy expires untagged images after a day: the child of the kept
    index v1 and the image ECS runs (by digest) are kept by the sweep, and ECR would expire them."""
    make = ManifestFactory(random.Random(13))
    child = make.image(oci=True)
    child_digest = push(local_ecr, "app", child, None, 5)
    push(local_ecr, "app", make.index([(child, "linux/amd64")]), "v1", 5)
    running = push(local_ecr, "app", make.image(compact=True), None, 5)
    push(local_ecr, "quiet", make.image(compact=True), "v1", 5)
    image = f"123456789012.dkr.ecr.{local_ecr.region}.amazonaws.com/app@{running}"
    ecs = local_ecr.client("ecs")
    ecs.create_cluster(clusterName="prod")
    definition = ecs.register_task_definition(
        family="app", containerDefinitions=[{"name": "app", "image": image, "memory": 64}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.run_task(cluster="prod", taskDefinition=definition, launchType="FARGATE")
    native = {"rules": [WANTED["rules"][0] | {"description": ""}]}
    native["rules"][0]["selection"] = native["rules"][0]["selection"] | {"countNumber": 1}
    put_policy(local_ecr, "app", json.dumps(native))
    put_policy(local_ecr, "quiet", json.dumps(native))
    target = ["--endpoint-url", local_ecr.endpoint_url, "--region", local_ecr.region]
    code = main(["plan", *target, "--config", str(ROOT / "cdk.json"), "--output", "json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    notes = {r["repository"]: r["notes"] for r in summary["perRepository"]}
    assert notes["quiet"] == []
    warned = sorted(notes["app"])
    assert len(warned) == 2
    assert all(
        n.startswith("native lifecycle policy: ECR's own rule 1 would expire") for n in warned
    )
    assert any(child_digest in n and "(index-child: child of kept index v1)" in n for n in warned)
    assert any(running in n and "(in-use: in use by " in n for n in warned)
    assert local_ecr.calls["PutLifecyclePolicy"] == 2, (
        "only the two puts above: plan writes nothing"
    )


def test_on_a_terminal_apply_shows_the_plan_asks_and_writes_only_on_yes(
    local_ecr: LocalEcr, wanted_file: Path
) -> None:
    local_ecr.client("ecr").create_repository(repositoryName="web")
    command = ("policy", "apply", "--policy", str(wanted_file))
    refused = run_on_terminal(local_ecr, "no", *command)
    assert "Write the lifecycle policy to 1 repositories?" in refused
    assert "web" in refused and "Nothing written." in refused
    assert stored_policy(local_ecr, "web") is None
    confirmed = run_on_terminal(local_ecr, "yes", *command)
    assert "1 created, 0 updated" in confirmed
    assert stored_policy(local_ecr, "web") is not None


def test_when_images_in_use_are_unknown_protect_in_use_writes_nothing(
    local_ecr: LocalEcr, capsys: pytest.CaptureFixture[str], wanted_file: Path
) -> None:
    make = ManifestFactory(random.Random(17))
    push(local_ecr, "web", make.image(compact=True), None, 9)
    local_ecr.faults.throttle("ListClusters", service="ecs", code="AccessDeniedException")
    code, protected = as_json(local_ecr, capsys, "apply", wanted_file, "--yes", "--protect-in-use")
    assert code == 0
    web = by_repository(protected)["web"]
    assert web["change"] == "skipped"
    assert web["reason"].startswith("--protect-in-use: images in use are unknown (")
    assert "AccessDeniedException" in web["reason"]
    assert stored_policy(local_ecr, "web") is None
    code, applied = as_json(local_ecr, capsys, "apply", wanted_file, "--yes")
    assert code == 0
    web = by_repository(applied)["web"]
    assert web["change"] == "create" and web["wouldExpire"] == 1
    assert web["warnings"][0].startswith("images in use are unknown: ")


def test_plan_and_apply_name_a_child_the_sweep_keeps_and_apply_needs_force(
    local_ecr: LocalEcr, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An untagged-after-1-day native policy on a multi-arch image: ECR judges the untagged
    child on its own and would expire it; the sweep keeps it with its index v1."""
    make = ManifestFactory(random.Random(29))
    child = make.image(oci=True)
    child_digest = push(local_ecr, "app", child, None, 5)
    push(local_ecr, "app", make.index([(child, "linux/amd64")]), "v1", 5)
    native = tmp_path / "native.json"
    untagged = json.loads(json.dumps(WANTED["rules"][0]))
    untagged["selection"]["countNumber"] = 1
    native.write_text(json.dumps({"rules": [untagged]}))

    code, plan = as_json(local_ecr, capsys, "plan", native)
    assert code == 0
    app = by_repository(plan)["app"]
    assert app["change"] == "skipped" and app["wouldExpire"] == 1
    assert app["warnings"] == [
        f"{child_digest[:19]} ({child_digest}): the policy would expire it, but the sweep keeps "
        "it: child of kept index v1"
    ]
    code, table, _ = policy_cli(local_ecr, capsys, "plan", native)
    assert "warning:" in table and "--force writes it anyway" in " ".join(table.split())

    code, refused = as_json(local_ecr, capsys, "apply", native, "--yes")
    assert code == 0 and by_repository(refused)["app"]["change"] == "skipped"
    assert stored_policy(local_ecr, "app") is None
    code, forced = as_json(local_ecr, capsys, "apply", native, "--yes", "--force")
    assert code == 0 and by_repository(forced)["app"]["change"] == "create"
    assert stored_policy(local_ecr, "app") is not None


def test_the_sweeps_plan_warns_before_native_lifecycle_policy_file_is_ever_written(
    local_ecr: LocalEcr, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    make = ManifestFactory(random.Random(31))
    child = make.image(oci=True)
    child_digest = push(local_ecr, "app", child, None, 5)
    push(local_ecr, "app", make.index([(child, "linux/amd64")]), "v1", 5)
    untagged = json.loads(json.dumps(WANTED["rules"][0]))
    untagged["selection"]["countNumber"] = 1
    (tmp_path / "native.json").write_text(json.dumps({"rules": [untagged]}))
    target = ["--endpoint-url", local_ecr.endpoint_url, "--region", local_ecr.region]
    context = ["-c", f"nativeLifecyclePolicyFile={tmp_path / 'native.json'}"]
    code = main(["plan", *target, "--config", str(ROOT / "cdk.json"), *context, "--output", "json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    (app,) = summary["perRepository"]
    assert app["nativeLifecyclePolicy"] == "skipped"
    assert app["notes"][0].startswith("nativeLifecyclePolicy not written: the policy would expire")
    assert child_digest in app["notes"][1] and "child of kept index v1" in app["notes"][1]
    assert stored_policy(local_ecr, "app") is None
