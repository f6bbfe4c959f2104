"""Which metrics a synthesized template reads, to compare with what the handler emits.

Walks the alarms and the dashboard body of a CloudFormation template (the dict from
`Template.to_json()` or a cdk.out `*.template.json`). A renamed metric then fails a test instead
of leaving an empty graph or an alarm that never fires.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

_TOKEN = "__TOKEN__"


@dataclass(frozen=True)
class MetricReference:
    """One metric as an alarm or a dashboard widget reads it."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...] = field(default=())
    source: str = ""
    """'alarm' or 'dashboard'."""
    where: str = ""
    """The alarm's logical id, or the dashboard's logical id and the widget title."""

    @property
    def dimension_map(self) -> dict[str, str]:
        return dict(self.dimensions)


def metric_references(template: Mapping[str, Any]) -> list[MetricReference]:
    """Every metric read by an AWS::CloudWatch::Alarm or AWS::CloudWatch::Dashboard."""
    found: list[MetricReference] = []
    for logical_id, resource in template.get("Resources", {}).items():
        kind = resource.get("Type")
        properties = resource.get("Properties", {})
        if kind == "AWS::CloudWatch::Alarm":
            found.extend(_alarm_metrics(logical_id, properties))
        elif kind == "AWS::CloudWatch::Dashboard":
            body = json.loads(_render(properties["DashboardBody"]))
            found.extend(_dashboard_metrics(logical_id, body))
    return found


def custom_metric_names(template: Mapping[str, Any], namespace: str) -> set[str]:
    """Names of the metrics read from our own namespace (not AWS/Lambda and the like)."""
    return {ref.name for ref in metric_references(template) if ref.namespace == namespace}


def _dimensions(raw: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((d["Name"], _text(d["Value"])) for d in raw))


def _alarm_metrics(logical_id: str, properties: Mapping[str, Any]) -> Iterator[MetricReference]:
    if "MetricName" in properties:
        yield MetricReference(
            namespace=properties["Namespace"],
            name=properties["MetricName"],
            dimensions=_dimensions(properties.get("Dimensions", [])),
            source="alarm",
            where=logical_id,
        )
    for query in properties.get("Metrics", []):
        metric = query.get("MetricStat", {}).get("Metric")
        if metric is not None:
            yield MetricReference(
                namespace=metric["Namespace"],
                name=metric["MetricName"],
                dimensions=_dimensions(metric.get("Dimensions", [])),
                source="alarm",
                where=logical_id,
            )


def _dashboard_metrics(logical_id: str, body: Mapping[str, Any]) -> Iterator[MetricReference]:
    for index, widget in enumerate(body.get("widgets", [])):
        where = f"{logical_id}/{widget.get('properties', {}).get('title', index)}"
        for row in widget.get("properties", {}).get("metrics", []):
            # A metric row is [namespace, name, dim, value, ..., {options}]; an expression row
            # is [{"expression": ...}] and reads metrics listed on their own rows.
            names = [part for part in row if isinstance(part, str)]
            if len(names) < 2:
                continue
            pairs = names[2:]
            yield MetricReference(
                namespace=names[0],
                name=names[1],
                dimensions=tuple(sorted(zip(pairs[::2], pairs[1::2], strict=True))),
                source="dashboard",
                where=where,
            )


def _render(value: Any) -> str:
    """A DashboardBody as JSON text, with CloudFormation tokens (Ref, GetAtt) as placeholders."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_render(part) for part in parts)
    return _TOKEN


def _text(value: Any) -> str:
    return value if isinstance(value, str) else _TOKEN
