"""CDK entry point (`cdk synth` runs it): read settings from context, build the stack.

Makes no AWS calls. Bad settings end synth with one clear message per key and exit code 2;
cdk-nag findings (printed above by CDK with the rule and the construct) end it with exit code 1.
"""

from __future__ import annotations

import sys

from ecr_sweeper.core.settings import SettingsError
from infra import build_app
from infra.config import cdk_json_context
from infra.function import SdkLayerMissing


def main() -> int:
    try:
        cdk_json_context()  # no "context" object in cdk.json would deploy the defaults unseen
        app, _stack = build_app()
    except (SettingsError, SdkLayerMissing) as error:
        print(f"ecr-sweeper: {error}", file=sys.stderr)
        return 2
    except RecursionError:
        print("ecr-sweeper: the CDK context is nested too deeply to read", file=sys.stderr)
        return 2
    try:
        app.synth()
    except RuntimeError as error:
        if not str(error).startswith("ValidationFailed"):
            raise
        print(f"ecr-sweeper: compliance checks failed; {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
