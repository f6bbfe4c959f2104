"""SSM's value size limits, which moto alone does not enforce: a state write that AWS refuses
must fail in tests too (the run cursor once passed 4,096 characters unnoticed)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from local_ecr import LocalEcr


def test_a_standard_parameter_takes_4096_characters_and_refuses_one_more(
    local_ecr: LocalEcr,
) -> None:
    ssm = local_ecr.client("ssm")
    ssm.put_parameter(Name="/state", Value="x" * 4096, Type="String")
    with pytest.raises(ClientError) as refused:
        ssm.put_parameter(Name="/state", Value="x" * 4097, Type="String", Overwrite=True)
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "maximum parameter value of 4096 characters" in error["Message"]
    value = ssm.get_parameter(Name="/state")["Parameter"]["Value"]
    assert value == "x" * 4096, "the refused write left the old value"


def test_the_advanced_tier_takes_8192_characters_and_keeps_its_tier_on_overwrite(
    local_ecr: LocalEcr,
) -> None:
    ssm = local_ecr.client("ssm")
    ssm.put_parameter(Name="/big", Value="y" * 8192, Type="String", Tier="Advanced")
    ssm.put_parameter(Name="/big", Value="z" * 5000, Type="String", Overwrite=True)
    with pytest.raises(ClientError) as refused:
        ssm.put_parameter(Name="/big", Value="z" * 8193, Type="String", Overwrite=True)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError):
        ssm.put_parameter(Name="/new", Value="w" * 4097, Type="String")
