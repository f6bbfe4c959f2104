"""The layout's rules, checked on the source: layers by package, a pure core, one module per AWS
service, and a Lambda asset that imports only what the Lambda runtime and the Powertools layer
provide. See docs/architecture.md."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lambda" / "ecr_sweeper"
LAYERS = ("core", "ports", "aws", "sweep", "handlers")
"""Bottom to top: a module may import its own layer and the layers below it, never above."""
PURE_LAYERS = ("core", "ports")
"""Plain data and decisions: no AWS SDK, no Powertools."""
RUNTIME_PACKAGES = {
    "ecr_sweeper",
    "boto3",
    "botocore",
    "urllib3",
    "aws_lambda_powertools",
    "pydantic",
}
"""boto3/botocore and urllib3 (botocore's HTTP client): the SDK layer; Powertools and pydantic:
the Powertools layer (built from aws-lambda-powertools[all], so its parser's pydantic v2 is in
it)."""
SERVICE_MODULES = {
    "ecr": "aws.ecr",
    "ecs": "aws.ecs",
    "events": "aws.events",
    "scheduler": "aws.scheduler",
    "batch": "aws.batch",
    "lambda": "aws.lambda_functions",
    "sagemaker": "aws.sagemaker",
    "codebuild": "aws.codebuild",
    "eks": "aws.eks",
    "s3": "aws.s3",
    "ssm": "aws.ssm",
    "sts": "aws.sts",
}
"""Each AWS service the function calls, and the one module that calls it, named after it."""


def _name(path: Path) -> str:
    """`core.planner` for lambda/ecr_sweeper/core/planner.py; `ports` for ports.py."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    _name(path): path for path in sorted(PACKAGE.rglob("*.py")) if path.name != "__init__.py"
}


def _layer(module: str) -> str:
    return module.split(".")[0]


def _imports(module: str) -> list[ast.Import | ast.ImportFrom]:
    tree = ast.parse(MODULES[module].read_text())
    return [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]


def top_level_imports(module: str) -> set[str]:
    found: set[str] = set()
    for node in _imports(module):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def own_imports(module: str) -> set[str]:
    """The ecr_sweeper modules it imports, without the `ecr_sweeper.` prefix
    (`from ecr_sweeper.core import planner` counts as `core.planner`)."""
    found: set[str] = set()
    for node in _imports(module):
        if isinstance(node, ast.Import):
            found.update(
                alias.name.removeprefix("ecr_sweeper.")
                for alias in node.names
                if alias.name.startswith("ecr_sweeper.")
            )
        elif node.module and node.level == 0 and node.module.startswith("ecr_sweeper."):
            package = node.module.removeprefix("ecr_sweeper.")
            for alias in node.names:
                submodule = f"{package}.{alias.name}"
                found.add(submodule if submodule in MODULES else package)
    return found


def test_every_module_sits_in_a_layer() -> None:
    assert {_layer(module) for module in MODULES} == set(LAYERS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_only_its_own_layer_and_those_below(module: str) -> None:
    allowed = set(LAYERS[: LAYERS.index(_layer(module)) + 1])
    upward = sorted(name for name in own_imports(module) if _layer(name) not in allowed)
    assert not upward, f"{module} imports {upward}, above its layer {_layer(module)!r}"


def test_no_two_modules_import_each_other() -> None:
    pairs = sorted(
        (first, second)
        for first in MODULES
        for second in own_imports(first)
        if second in MODULES and first < second and first in own_imports(second)
    )
    assert not pairs


@pytest.mark.parametrize("module", sorted(MODULES))
def test_the_lambda_asset_imports_only_the_runtime_and_the_layer(module: str) -> None:
    outside = top_level_imports(module) - RUNTIME_PACKAGES - set(sys.stdlib_module_names)
    assert not outside, f"{module} imports {sorted(outside)}, absent from the Lambda runtime"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) in PURE_LAYERS))
def test_the_decision_core_and_the_ports_import_no_aws_sdk(module: str) -> None:
    assert not top_level_imports(module) & {"boto3", "botocore", "aws_lambda_powertools"}


def _calls_aws(module: str) -> bool:
    """Whether the module calls an API: `self._client.op(...)`, `client.op(...)` or
    `client_for("svc").op(...)`."""
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
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
    builders = [m for m in MODULES if "boto3.Session(" in MODULES[m].read_text()]
    assert builders == ["aws.clients"], "only aws/clients.py builds clients"


def test_only_the_kubernetes_reader_speaks_http_outside_the_sdk() -> None:
    """Every AWS call goes through botocore; urllib3 directly is for one thing only, reading an
    EKS cluster's Kubernetes API (which is no AWS service), and that module calls no AWS API."""
    importing = {m for m in MODULES if "urllib3" in top_level_imports(m)}
    assert importing == {"aws.kubernetes"}
    assert not _calls_aws("aws.kubernetes")
    assert not {"boto3", "botocore"} & top_level_imports("aws.kubernetes")


def test_only_the_aws_layer_imports_boto3() -> None:
    """Clients and sessions are the adapters' business. (The sweep still imports botocore's
    exceptions, to catch a target whose role can't be assumed.)"""
    importing = {m for m in MODULES if "boto3" in top_level_imports(m)}
    assert {_layer(m) for m in importing} == {"aws"}


CLI_PACKAGE = ROOT / "cli" / "ecr_sweeper_cli"
CLI_SERVICE_MODULES = {
    "logs": "run_logs",
    "cloudformation": "run_logs",
    "ssm": "approve_cmd",
    "lambda": "approve_cmd",
    "stepfunctions": "approve_cmd",
}
"""The CLI's own AWS calls (reading what the deployed function logged; approving a held run and
starting the next one); ECR and the rest go through the Lambda package's adapters (the
approval's SSM client goes to aws.ssm)."""


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


def _modules_imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_cli_and_infra_import_no_handler() -> None:
    """The CLI and the stack reuse the engine and the adapters, never the Lambda entry points
    (their module-level Powertools objects are the function's own)."""
    importing = sorted(
        str(path.relative_to(ROOT))
        for folder in (CLI_PACKAGE, ROOT / "infra")
        for path in folder.glob("*.py")
        if any(name.startswith("ecr_sweeper.handlers") for name in _modules_imported(path))
    )
    assert not importing
