"""The words of `plan`: counts agree with their nouns, a dry run never says "deleted", a plan is
not "swept", and the totals count every repository the settings selected."""

from __future__ import annotations

import random

from helpers.sweep import push
from test_sweeper_cli import run_cli, target

from ecr_sweeper.core.overrides import SKIP_TAG
from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory


def test_plan_wording(local_ecr: LocalEcr) -> None:
    make = ManifestFactory(random.Random(5))
    push(local_ecr, "web", make.image(compact=True), None, 10)
    push(local_ecr, "web", make.image(compact=True), "v1", 3)
    push(local_ecr, "frozen", make.image(compact=True), None, 10)
    ecr = local_ecr.client("ecr")
    arn = ecr.describe_repositories(repositoryNames=["frozen"])["repositories"][0]["repositoryArn"]
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": SKIP_TAG, "Value": "true"}])

    result = run_cli("plan", *target(local_ecr), "-v", "--details")
    assert result.returncode == 0, result.stderr
    out, err = result.stdout, result.stderr
    assert "DRY RUN 1 repository planned, 1 skipped; 2 images scanned" in out
    assert "would delete 1 image (" in out
    assert "web (planned)" in out and "(swept)" not in out
    assert "frozen (skipped): tagged ecr-sweeper:skip=true" in out
    assert "sweeping 2 repositories with" in err
    assert "repository web: planned, 2 images, 1 to delete" in err
    assert " deleted" not in err, "a dry run deletes nothing and says so"
    assert "1 repositories" not in out + err and "1 images" not in out + err
