"""One X-Ray subsegment per repository, annotated with its counts (through Powertools Tracer)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

from aws_xray_sdk import global_sdk_config
from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.core.models.segment import Segment
from helpers.sweep import push, sweeper

from local_ecr import LocalEcr
from local_ecr.manifests import ManifestFactory


class RecordingProvider:
    """The real X-Ray recorder, with a segment opened around the run as Lambda would."""

    def __init__(self) -> None:
        self.subsegments: list[Any] = []

    def get_trace_entity(self) -> Any:
        return xray_recorder.get_trace_entity()

    def set_trace_entity(self, entity: Any) -> None:
        xray_recorder.set_trace_entity(entity)

    def clear_trace_entities(self) -> None:
        xray_recorder.clear_trace_entities()

    @contextlib.contextmanager
    def in_subsegment(self, name: str) -> Iterator[Any]:
        with xray_recorder.in_subsegment(name) as subsegment:
            self.subsegments.append(subsegment)
            yield subsegment


class TracerStandIn:
    """Powertools' Tracer exposes `.provider.in_subsegment`; this is the same shape."""

    def __init__(self) -> None:
        self.provider = RecordingProvider()


def test_each_repository_gets_an_annotated_subsegment(local_ecr: LocalEcr) -> None:
    make = ManifestFactory(random.Random(8))
    for repository in ("api", "web"):
        push(local_ecr, repository, make.image(compact=True), None, 9)
        push(local_ecr, repository, make.image(compact=True), "v1", 9)
    tracer = TracerStandIn()
    was_enabled = global_sdk_config.sdk_enabled()
    global_sdk_config.set_sdk_enabled(True)  # Powertools disables it outside Lambda
    xray_recorder.configure(context_missing="LOG_ERROR", sampling=False)
    segment = Segment("ecr-sweeper")
    xray_recorder.context.put_segment(segment)
    try:
        sweeper(local_ecr, tracer=tracer).run()
    finally:
        xray_recorder.context.clear_trace_entities()
        global_sdk_config.set_sdk_enabled(was_enabled)
    names = sorted(s.name for s in tracer.provider.subsegments)
    assert names == ["## repository api", "## repository web"]
    assert {s.parent_id for s in tracer.provider.subsegments} == {segment.id}, (
        "the workers' subsegments hang under the run's segment"
    )
    for subsegment in tracer.provider.subsegments:
        annotations = subsegment.annotations
        assert annotations["repository"] in ("api", "web")
        assert annotations["status"] == "swept"
        assert (annotations["imagesScanned"], annotations["imagesDeleted"]) == (2, 1)
