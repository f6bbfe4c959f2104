"""Shared fixtures: the local ECR emulator (local_ecr.pytest_plugin) and plain-data helpers."""

from __future__ import annotations

pytest_plugins = ["local_ecr.pytest_plugin"]
