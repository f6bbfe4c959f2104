"""The ecr-sweeper CDK infrastructure: one stack of a Lambda, its schedule and its monitoring."""

from infra.stack import (
    STACK_ID,
    EcrSweeperStack,
    add_compliance_checks,
    build_app,
    synthesized_template,
)

__all__ = [
    "STACK_ID",
    "EcrSweeperStack",
    "add_compliance_checks",
    "build_app",
    "synthesized_template",
]
