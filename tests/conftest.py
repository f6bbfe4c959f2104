"""Shared fixtures: the local ECR emulator (local_ecr.pytest_plugin).

No test may look for an instance role: that lookup would leave 127.0.0.1.
"""

from __future__ import annotations

import os

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

pytest_plugins = ["local_ecr.pytest_plugin"]
