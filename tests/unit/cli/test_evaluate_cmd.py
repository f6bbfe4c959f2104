"""`ecr-sweeper evaluate` through its own argparse registration: output, stdin and exit-2 paths."""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ecr_sweeper.core.evaluate import images_from_document
from ecr_sweeper.core.model import ImageDetailError
from ecr_sweeper_cli import evaluate_cmd

NOW = "2026-06-01T12:00:00+00:00"
NOW_TIME = datetime.fromisoformat(NOW)

POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "untagged after 1 day",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 1,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "description": "keep 2 tagged",
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


def detail(digest: str, tags: list[str], days_ago: float) -> dict[str, Any]:
    pushed = NOW_TIME - timedelta(days=days_ago)
    entry: dict[str, Any] = {
        "registryId": "123456789012",
        "repositoryName": "web",
        "imageDigest": digest,
        "imagePushedAt": pushed.isoformat(),
        "imageSizeInBytes": 1000,
    }
    if tags:
        entry["imageTags"] = tags
    return entry


IMAGES = {
    "imageDetails": [
        detail("sha256:t3", ["v3"], 3),
        detail("sha256:u-old", [], 2),
        detail("sha256:t1", ["v1", "latest"], 1),
        detail("sha256:u-new", [], 0.5),
        detail("sha256:t2", ["v2"], 2),
    ]
}


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ecr-sweeper")
    evaluate_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def write(tmp_path: Path, name: str, content: Any) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), "utf-8")
    return str(path)


def assert_one_line_error(capsys: pytest.CaptureFixture[str], *fragments: str) -> str:
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("ecr-sweeper evaluate: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err
    return err


def test_prints_expired_digests_and_every_decision_newest_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy, images = write(tmp_path, "p.json", POLICY), write(tmp_path, "i.json", IMAGES)
    assert run(["evaluate", "--policy", policy, "--images", images, "--now", NOW]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    result = json.loads(out)
    assert result["expired"] == ["sha256:u-old", "sha256:t3"]
    assert result["transitioned"] == []
    decisions = result["decisions"]
    assert [d["imageDigest"] for d in decisions] == [
        "sha256:u-new",
        "sha256:t1",
        "sha256:t2",  # pushed at the same moment as u-old: the digest decides
        "sha256:u-old",
        "sha256:t3",
    ]
    by_digest = {d["imageDigest"]: d for d in decisions}
    assert by_digest["sha256:t1"] == {
        "imageDigest": "sha256:t1",
        "imageTags": ["v1", "latest"],
        "imageStatus": "ACTIVE",
        "action": "keep",
        "rulePriority": None,
        "reason": 'kept: among the newest 2 images selected by rule 2 ("keep 2 tagged")',
    }
    assert by_digest["sha256:u-old"]["action"] == "expire"
    assert by_digest["sha256:u-old"]["rulePriority"] == 1
    assert by_digest["sha256:u-old"]["reason"].startswith("expire: pushed 2.0 days ago")
    assert by_digest["sha256:t3"]["rulePriority"] == 2
    assert by_digest["sha256:t2"]["action"] == "keep"
    assert by_digest["sha256:u-new"]["imageTags"] == []


def test_reads_the_get_lifecycle_policy_object_and_a_bare_list_with_epoch_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    response = {"repositoryName": "web", "lifecyclePolicyText": json.dumps(POLICY)}
    bare = [
        dict(entry, imagePushedAt=datetime.fromisoformat(entry["imagePushedAt"]).timestamp())
        for entry in IMAGES["imageDetails"]
    ]
    policy, images = write(tmp_path, "p.json", response), write(tmp_path, "i.json", bare)
    assert run(["evaluate", "--policy", policy, "--images", images, "--now", NOW]) == 0
    assert json.loads(capsys.readouterr().out)["expired"] == ["sha256:u-old", "sha256:t3"]


@pytest.mark.parametrize("stdin_for", ["policy", "images"])
def test_dash_reads_one_file_from_stdin(
    stdin_for: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    content = POLICY if stdin_for == "policy" else IMAGES
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(content)))
    policy = "-" if stdin_for == "policy" else write(tmp_path, "p.json", POLICY)
    images = "-" if stdin_for == "images" else write(tmp_path, "i.json", IMAGES)
    assert run(["evaluate", "--policy", policy, "--images", images, "--now", NOW]) == 0
    assert json.loads(capsys.readouterr().out)["expired"] == ["sha256:u-old", "sha256:t3"]


def test_stdin_for_both_files_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("{}"))
    assert run(["evaluate", "--policy", "-", "--images", "-"]) == 2
    assert_one_line_error(capsys, "can't both be '-'")


def test_errors_about_stdin_name_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("[1, 2"))
    assert run(["evaluate", "--policy", write(tmp_path, "p.json", POLICY), "--images", "-"]) == 2
    assert_one_line_error(capsys, "<stdin>: not valid JSON")


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nope.json")
    assert run(["evaluate", "--policy", missing, "--images", missing]) == 2
    assert_one_line_error(capsys, f"{missing}: can't read it (No such file or directory)")


def test_bad_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write(tmp_path, "p.json", "{ rules: }")
    assert run(["evaluate", "--policy", policy, "--images", write(tmp_path, "i.json", IMAGES)]) == 2
    assert_one_line_error(capsys, f"{policy}: not valid JSON (")


def test_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "i.json"
    images.write_bytes(b"\xff\xfe\x00garbage")
    policy = write(tmp_path, "p.json", POLICY)
    assert run(["evaluate", "--policy", policy, "--images", str(images)]) == 2
    assert_one_line_error(capsys, f"{images}: not UTF-8 text")


def test_invalid_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = json.loads(json.dumps(POLICY))
    bad["rules"][1]["selection"]["countUnit"] = "days"
    policy = write(tmp_path, "p.json", bad)
    assert run(["evaluate", "--policy", policy, "--images", write(tmp_path, "i.json", IMAGES)]) == 2
    assert_one_line_error(
        capsys, f"{policy}: invalid lifecycle policy: rule 2 (rulePriority 2): selection.countUnit"
    )


@pytest.mark.parametrize(
    ("listing", "fragment"),
    [
        ({"imageDetails": [detail("sha256:a", [], 1), {"imageDigest": "sha256:b"}]},
         "imageDetails[1]: imagePushedAt of sha256:b: missing"),
        ({"imageDetails": [dict(detail("sha256:a", [], 1), imagePushedAt="yesterday")]},
         "imageDetails[0]: imagePushedAt of sha256:a: 'yesterday' is not an ISO-8601"),
        ({"imageDetails": [detail("sha256:a", [], 1), detail("sha256:a", ["v"], 2)]},
         "imageDetails[1]: imageDigest sha256:a is also imageDetails[0]"),
        ({"imageDetails": [], "nextToken": "abc"}, "nextToken: the listing is incomplete"),
        ({"images": []}, "images: unknown key"),
        ({}, "imageDetails: missing"),
        ({"imageDetails": {}}, "imageDetails: expected a list"),
        ("text", "expected the object `aws ecr describe-images` prints"),
        ([5], "imageDetails[0]: expected an ImageDetail object"),
    ],
)  # fmt: skip
def test_bad_image_listing(
    listing: Any, fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = write(tmp_path, "i.json", json.dumps(listing))
    policy = write(tmp_path, "p.json", POLICY)
    assert run(["evaluate", "--policy", policy, "--images", images, "--now", NOW]) == 2
    assert_one_line_error(capsys, f"{images}: bad image listing: {fragment}")


@pytest.mark.parametrize("now", ["tomorrow", "2026-13-01", ""])
def test_bad_now(now: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy, images = write(tmp_path, "p.json", POLICY), write(tmp_path, "i.json", IMAGES)
    assert run(["evaluate", "--policy", policy, "--images", images, "--now", now]) == 2
    assert_one_line_error(capsys, "--now: ", "is not an ISO-8601 timestamp")


def test_now_without_offset_is_utc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listing = {"imageDetails": [detail("sha256:u", [], 1)]}  # exactly one day before NOW
    policy, images = write(tmp_path, "p.json", POLICY), write(tmp_path, "i.json", listing)
    assert run(["evaluate", "--policy", policy, "--images", images, "--now", NOW[:19]]) == 0
    assert json.loads(capsys.readouterr().out)["expired"] == []
    later = "2026-06-01T12:00:01"  # one second later: now more than one day old
    assert run(["evaluate", "--policy", policy, "--images", images, "--now", later]) == 0
    assert json.loads(capsys.readouterr().out)["expired"] == ["sha256:u"]


def test_now_defaults_to_the_current_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = datetime.now(UTC)
    listing = [
        {"imageDigest": "sha256:old", "imagePushedAt": (current - timedelta(hours=30)).isoformat()},
        {"imageDigest": "sha256:new", "imagePushedAt": (current - timedelta(hours=18)).isoformat()},
    ]
    policy, images = write(tmp_path, "p.json", POLICY), write(tmp_path, "i.json", listing)
    assert run(["evaluate", "--policy", policy, "--images", images]) == 0
    assert json.loads(capsys.readouterr().out)["expired"] == ["sha256:old"]


def test_policy_and_images_are_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run(["evaluate", "--images", "i.json"])
    assert exited.value.code == 2
    assert "--policy" in capsys.readouterr().err


def test_images_from_document_keeps_every_field_the_engine_needs() -> None:
    entry = dict(detail("sha256:a", ["v1"], 1), lastRecordedPullTime=1_780_000_000)
    (image,) = images_from_document({"imageDetails": [entry]})
    assert image.tags == ("v1",)
    assert image.pushed_at == NOW_TIME - timedelta(days=1)
    assert image.last_pulled_at == datetime.fromtimestamp(1_780_000_000, UTC)
    with pytest.raises(ImageDetailError, match=r"^imageDetails\[0\]: imageTags of sha256:a"):
        images_from_document([dict(entry, imageTags="v1")])


def test_reads_the_archive_fields_and_reports_transitions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {
                    "tagStatus": "any",
                    "countType": "sinceImagePulled",
                    "countUnit": "days",
                    "countNumber": 90,
                },
                "action": {"type": "transition", "targetStorageClass": "archive"},
            }
        ]
    }
    images = {
        "imageDetails": [
            {"imageDigest": "sha256:idle", "imageTags": ["v1"], "imagePushedAt": 0},
            {
                "imageDigest": "sha256:restored",
                "imageTags": ["v2"],
                "imagePushedAt": 0,
                "imageStatus": "ACTIVE",
                "lastArchivedAt": "2026-01-01T00:00:00Z",
                "lastActivatedAt": "2026-05-30T00:00:00Z",
            },
            {
                "imageDigest": "sha256:cold",
                "imageTags": ["v0"],
                "imagePushedAt": 0,
                "imageStatus": "ARCHIVED",
                "lastArchivedAt": "2026-01-01T00:00:00Z",
            },
        ]
    }
    arguments = ["--policy", write(tmp_path, "p.json", policy), "--now", NOW]
    assert run(["evaluate", *arguments, "--images", write(tmp_path, "i.json", images)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["transitioned"] == ["sha256:idle"]
    assert result["expired"] == []
    actions = {d["imageDigest"]: (d["action"], d["imageStatus"]) for d in result["decisions"]}
    assert actions == {
        "sha256:idle": ("transition", "ACTIVE"),
        "sha256:restored": ("keep", "ACTIVE"),
        "sha256:cold": ("keep", "ARCHIVED"),
    }


def test_an_unknown_image_status_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = [{"imageDigest": "sha256:a", "imagePushedAt": 0, "imageStatus": "FROZEN"}]
    arguments = ["--policy", write(tmp_path, "p.json", POLICY), "--now", NOW]
    assert run(["evaluate", *arguments, "--images", write(tmp_path, "i.json", images)]) == 2
    err = capsys.readouterr().err
    assert "imageDetails[0]: imageStatus of sha256:a: 'FROZEN'" in err
    assert "ACTIVE, ARCHIVED, ACTIVATING" in err
