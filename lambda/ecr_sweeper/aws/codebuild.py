"""The one module that talks to CodeBuild: the build images of projects.

A project's `environment.image` is an image every build of it pulls; CodeBuild's own curated
images (`aws/codebuild/...`) are not ECR's and are left to the reference parser to ignore.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

BATCH_SIZE = 100
"""BatchGetProjects takes at most 100 names."""


class CodeBuildImages:
    """(image reference, holder) of every project's build environment."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def references(self) -> Iterator[tuple[str, str]]:
        for page in self._client.get_paginator("list_projects").paginate():
            names = list(page.get("projects", []))
            for start in range(0, len(names), BATCH_SIZE):
                found = self._client.batch_get_projects(names=names[start : start + BATCH_SIZE])
                # A project deleted since it was listed comes back in projectsNotFound: it
                # holds no image any more.
                for project in found.get("projects", []):
                    image = project.get("environment", {}).get("image")
                    if image:
                        yield str(image), f"CodeBuild project {project['name']}"
