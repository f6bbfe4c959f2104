"""The start-up check of the SDK's ECR model, on the real model and on one missing a field."""

from __future__ import annotations

import copy
from typing import Any

import botocore.session
import pytest
from botocore.model import ServiceModel

from ecr_sweeper.aws import sdk_check


def ecr_model_without(shape: str, member: str) -> ServiceModel:
    """The installed ECR model with one member removed, as an older botocore ships it."""
    loader = botocore.session.get_session().get_component("data_loader")
    document: dict[str, Any] = copy.deepcopy(loader.load_service_model("ecr", "service-2"))
    del document["shapes"][shape]["members"][member]
    return ServiceModel(document, service_name="ecr")


def test_the_installed_sdk_knows_every_field_safety_reads() -> None:
    assert sdk_check.missing_ecr_fields() == []
    assert sdk_check.sdk_problem() is None


@pytest.mark.parametrize(
    ("shape", "member"),
    [
        ("ImageDetail", "subjectManifestDigest"),
        ("ImageDetail", "imageManifestMediaType"),
        ("ImageDetail", "lastRecordedPullTime"),
        ("ImageIdentifier", "imageTag"),
    ],
)
def test_a_model_missing_a_field_is_refused_with_the_field_and_why(shape: str, member: str) -> None:
    model = ecr_model_without(shape, member)
    (missing,) = sdk_check.missing_ecr_fields(model)
    assert f"[].{member} (" in missing
    problem = sdk_check.sdk_problem(model)
    assert problem is not None
    assert member in problem and f"botocore {botocore.__version__}" in problem
    assert "deletes nothing" in problem
