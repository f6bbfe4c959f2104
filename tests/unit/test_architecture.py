"""The layout's rules, checked on the source: a pure core, one module per AWS service, and a
Lambda asset that imports only what the Lambda runtime and the Powertools layer provide."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "lambda" / "ecr_sweeper"
PURE_CORE = (
    "model",
    "lifecycle",
    "planner",
    "references",
    "settings",
    "extra_references",
    "registry",
    "results",
    "limiter",
    "budget",
    "repository_sweep",
    "engine",
    "native_policy",
)
"""The decision core, and the engine that drives the registry port: no AWS SDK types."""
RUNTIME_PACKAGES = {"ecr_sweeper", "boto3", "botocore", "aws_lambda_powertools", "pydantic"}
"""boto3/botocore: the SDK layer; Powertools and pydantic: the Powertools layer (built from
aws-lambda-powertools[all], so its parser's pydantic v2 is in it)."""
SERVICE_MODULES = {
    "ecr": "ecr",
    "ecs": "ecs",
    "events": "events",
    "scheduler": "scheduler",
    "batch": "batch",
    "lambda": "lambdas",
    "s3": "storage",
    "ssm": "parameters",
    "sts": "accounts",
}


def imports_of(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


MODULES = sorted(path.stem for path in PACKAGE.glob("*.py"))


@pytest.mark.parametrize("module", MODULES)
def test_the_lambda_asset_imports_only_the_runtime_and_the_layer(module: str) -> None:
    outside = imports_of(module) - RUNTIME_PACKAGES - set(sys.stdlib_module_names)
    assert not outside, f"{module}.py imports {sorted(outside)}, absent from the Lambda runtime"


@pytest.mark.parametrize("module", PURE_CORE)
def test_the_decision_core_imports_no_aws_sdk(module: str) -> None:
    assert not imports_of(module) & {"boto3", "botocore", "aws_lambda_powertools"}


def _calls_aws(module: str) -> bool:
    """Whether the module calls an API: `self._client.op(...)`, `client.op(...)` or
    `client_for("svc").op(...)`."""
    for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        target = node.func.value
        if isinstance(target, ast.Attribute) and target.attr == "_client":
            return True
        if isinstance(target, ast.Name) and target.id == "client":
            return True
        if isinstance(target, ast.Call) and getattr(target.func, "id", None) == "client_for":
            return True
    return False


def test_exactly_one_module_talks_to_each_aws_service() -> None:
    talking = {module for module in MODULES if _calls_aws(module)}
    assert talking == set(SERVICE_MODULES.values())
    builders = [m for m in MODULES if "boto3.Session(" in (PACKAGE / f"{m}.py").read_text()]
    assert builders == ["aws"], "only aws.py builds clients"


CLI_PACKAGE = PACKAGE.parents[1] / "cli" / "ecr_sweeper_cli"
CLI_SERVICE_MODULES = {"logs": "run_logs", "cloudformation": "run_logs"}
"""The CLI's own AWS calls (reading what the deployed function logged); ECR and the rest go
through the Lambda package's modules."""


def _clients_built(path: Path) -> set[str]:
    """Services a module builds clients for: `....client("svc")`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "client"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(str(node.args[0].value))
    return found


def test_exactly_one_cli_module_talks_to_each_service_it_uses() -> None:
    talking = {
        (service, path.stem)
        for path in sorted(CLI_PACKAGE.glob("*.py"))
        for service in _clients_built(path)
    }
    assert talking == set(CLI_SERVICE_MODULES.items())
