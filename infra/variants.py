"""Synthesize the stack's variants (`python -m infra.variants OUTDIR`), one template per stack
and variant, for scanners that read CloudFormation (`make checkov`). Offline, like `cdk synth`."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from infra.config import cdk_json_context
from infra.stack import build_app

KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "fan-out": {"fanOut": True},
    "organization": {
        "fanOut": True,
        "accounts": '["111111111111"]',
        "regions": '["us-east-1","eu-west-1"]',
        "excludeRepositories": '["team/prod-*"]',
    },
    "options": {
        "extraImageReferences": "s3://platform-config/keep.json",
        "extraImageReferencesKmsKeyArn": KEY,
        "expiredImageAction": "archive",
        "alarmEmail": "ops@example.com",
        "permissionsBoundaryArn": "arn:aws:iam::123456789012:policy/boundary",
    },
}
"""The settings that change what the templates hold: the fan-out, the member stack, the
optional grants, the boundary."""


def synthesize_variants(outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, settings in VARIANTS.items():
        with tempfile.TemporaryDirectory(prefix="ecr-sweeper-variant-") as assembly_dir:
            app, _stack = build_app({**cdk_json_context(), **settings}, outdir=assembly_dir)
            for stack in app.synth().stacks:
                path = outdir / f"{name}-{stack.stack_name}.template.json"
                path.write_text(json.dumps(stack.template, indent=1), encoding="utf-8")
                written.append(path)
    return written


if __name__ == "__main__":
    for path in synthesize_variants(Path(sys.argv[1] if len(sys.argv) > 1 else "build/variants")):
        print(path)
