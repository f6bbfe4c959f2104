"""The regions the installed AWS SDK knows: botocore's partition data (partitions.json).

A region the SDK doesn't know is a typo (`us-east-99`) far more often than a region newer than
the SDK, so synth and the CLI refuse it; `allowUnknownRegions: true` is the escape for a region
launched after the installed botocore. Reads the data botocore ships; makes no AWS call.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping

import botocore
from botocore.loaders import create_loader

from ecr_sweeper.core.settings import StackSettings


@functools.cache
def known_regions() -> dict[str, str]:
    """{region: partition} for every region of every partition botocore knows (the `*-global`
    pseudo-regions left out)."""
    partitions = create_loader().load_data("partitions")["partitions"]
    return {
        region: partition["id"]
        for partition in partitions
        for region in partition.get("regions", {})
        if not region.endswith("-global")
    }


def region_problems(settings: StackSettings, origins: Mapping[str, str] | None = None) -> list[str]:
    """One problem per region of the `regions` setting that botocore doesn't know, saying the
    closest known name and the escape; none with `allowUnknownRegions`."""
    if settings.allow_unknown_regions:
        return []
    known = known_regions()
    origin = origins.get("regions") if origins else None
    key = f"regions ({origin})" if origin else "regions"
    problems = []
    for region in settings.regions:
        if region in known:
            continue
        close = difflib.get_close_matches(region, list(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(
            f"{key}: {region!r} is not a region botocore {botocore.__version__} knows{hint}; "
            "if it is a region newer than the installed SDK, upgrade boto3/botocore "
            "or set allowUnknownRegions to true"
        )
    return problems
