"""Which images are in use, from every source the settings switch on.

If any source can't be read completely, the run deletes nothing: an image in use that we failed
to see must not be deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecr_sweeper.ecr import error_code
from ecr_sweeper.ecs import EcsImages
from ecr_sweeper.extra_references import ExtraReferencesError, parse_document, read_document
from ecr_sweeper.lambdas import LambdaImages
from ecr_sweeper.references import InUse
from ecr_sweeper.settings import Settings


class UsageUnavailable(Exception):
    """A source of images in use could not be read; the message names it and why."""


def images_in_use(settings: Settings, client_for: Callable[[str], Any]) -> InUse:
    """Collect every reference; raises UsageUnavailable rather than return a partial answer."""
    in_use = InUse()
    sources: list[tuple[str, Callable[[], Any]]] = []
    if settings.protect_ecs_images:
        sources.append(("ECS", lambda: EcsImages(client_for("ecs")).references()))
    if settings.protect_lambda_images:
        sources.append(("Lambda", lambda: LambdaImages(client_for("lambda")).references()))
    if settings.extra_image_references:
        location = settings.extra_image_references
        sources.append(
            (location, lambda: parse_document(read_document(location, client_for), location))
        )
    for name, references in sources:
        try:
            for reference, holder in references():
                in_use.add(reference, holder)
        except (ClientError, BotoCoreError) as error:
            raise UsageUnavailable(
                f"images in use could not be read from {name}: {error_code(error)}: {error}"
            ) from error
        except ExtraReferencesError as error:
            raise UsageUnavailable(str(error)) from error
    if in_use.unparsed:
        raise UsageUnavailable(
            f"{len(in_use.unparsed)} image reference(s) in use could not be read, e.g. "
            f"{in_use.unparsed[0]}"
        )
    return in_use
