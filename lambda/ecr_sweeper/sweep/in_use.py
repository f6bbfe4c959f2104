"""Which images are in use, from every source the settings switch on.

If any source can't be read completely, the run deletes nothing: an image in use that we failed
to see must not be deleted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecr_sweeper.aws import s3, sts
from ecr_sweeper.aws.batch import BatchImages
from ecr_sweeper.aws.codebuild import CodeBuildImages
from ecr_sweeper.aws.ecr import error_code
from ecr_sweeper.aws.ecs import EcsImages
from ecr_sweeper.aws.eks import ClusterUnreadable, EksClusters, access_commands, cluster_references
from ecr_sweeper.aws.events import EventBridgeTasks
from ecr_sweeper.aws.lambda_functions import LambdaImages
from ecr_sweeper.aws.sagemaker import SageMakerImages
from ecr_sweeper.aws.scheduler import ScheduledTasks, ScheduleUnreadable
from ecr_sweeper.aws.ssm import read_parameter
from ecr_sweeper.core import log_events as ev
from ecr_sweeper.core.extra_references import (
    S3_PREFIX,
    SSM_PREFIX,
    ExtraReferencesError,
    parse_document,
)
from ecr_sweeper.core.references import InUse, Usage
from ecr_sweeper.core.settings import Settings


def read_document(location: str, client_for: Any) -> str:
    """Fetch the document text; `client_for(service)` builds the boto3 client."""
    if location.startswith(S3_PREFIX):
        bucket, _, key = location[len(S3_PREFIX) :].partition("/")
        try:
            return s3.read_text(client_for("s3"), bucket, key)
        except s3.StorageError as error:
            raise ExtraReferencesError(str(error)) from error
    return read_parameter(client_for("ssm"), location[len(SSM_PREFIX) :])


References = Callable[[], Iterable[tuple[str, str]]]
"""The extra references document's (reference, holder) pairs, read when called."""


def extra_references(settings: Settings, client_for: Callable[[str], Any]) -> References | None:
    """The extra references document (settings: extraImageReferences), read at most once
    however many targets ask, with `client_for`'s credentials: the deployment's own, which are
    granted the document (a member account's role is not). None if no document is set."""
    location = settings.extra_image_references
    if location is None:
        return None

    @functools.cache
    def read() -> tuple[tuple[str, str], ...]:
        return tuple(parse_document(read_document(location, client_for), location))

    return read


class UsageUnavailable(Exception):
    """A source of images in use could not be read; the message names it and why."""


class _HolderUnreadable(Exception):
    """A task definition that a rule or schedule names could not be described."""

    def __init__(self, holder: str, error: ClientError | BotoCoreError) -> None:
        super().__init__(holder)
        self.holder, self.error = holder, error


def _scheduled_images(
    definitions: Iterable[tuple[str, str]], ecs: EcsImages
) -> Iterator[tuple[str, str]]:
    """The images of the task definitions that rules or schedules start, held by them."""
    for arn, holder in definitions:
        named = f"{holder} ({arn.rsplit('/', 1)[-1]})"
        try:
            images = ecs.task_definition_images(arn)
        except (ClientError, BotoCoreError) as error:
            raise _HolderUnreadable(named, error) from error
        for image in images:
            yield image, named


def _eks_images(
    patterns: tuple[str, ...], client_for: Callable[[str], Any]
) -> Iterator[tuple[str, str]]:
    """The images of every cluster `patterns` name, one cluster after the other."""
    clusters = EksClusters(client_for("eks"), patterns)
    signer = client_for("sts")
    for name in clusters.names():
        cluster = clusters.describe(name)
        if cluster is not None:
            yield from cluster_references(cluster, functools.partial(sts.eks_token, signer, name))


def _cluster_problem(unreadable: ClusterUnreadable, client_for: Callable[[str], Any]) -> str:
    """What went wrong with a cluster and, when it refused us, the commands that let us in."""
    said = f"images in use could not be read from {unreadable}"
    if not unreadable.refused:
        return said
    signer = client_for("sts")
    commands = access_commands(
        unreadable.cluster, signer.meta.region_name, sts.caller_role_arn(signer)
    )
    return (
        f"{said}. Give the sweeper's role read access to the cluster (AmazonEKSViewPolicy): "
        f"{commands}"
    )


def images_in_use(
    settings: Settings, client_for: Callable[[str], Any], references: References | None = None
) -> InUse:
    """Collect every reference; raises UsageUnavailable rather than return a partial answer.

    `references` reads the extra references document (`extra_references`); by default it is
    read with `client_for`, the target's own clients.
    """
    in_use = InUse()

    @functools.cache
    def ecs() -> EcsImages:
        """One per run, so each task definition is described once whoever names it."""
        return EcsImages(
            client_for("ecs"), previous_revisions=settings.protect_previous_task_definitions
        )

    sources: list[tuple[str, Callable[[], Iterable[tuple[str, str]]]]] = []
    if settings.protect_ecs_images:
        sources.append(("ECS", lambda: ecs().references()))
    if settings.protect_scheduled_task_images:
        sources.append(
            (
                "EventBridge rules",
                lambda: _scheduled_images(
                    EventBridgeTasks(client_for("events")).task_definitions(), ecs()
                ),
            )
        )
        sources.append(
            (
                "EventBridge Scheduler",
                lambda: _scheduled_images(
                    ScheduledTasks(client_for("scheduler")).task_definitions(), ecs()
                ),
            )
        )
    if settings.protect_batch_images:
        sources.append(("AWS Batch", lambda: BatchImages(client_for("batch")).references()))
    if settings.protect_lambda_images:
        sources.append(("Lambda", lambda: LambdaImages(client_for("lambda")).references()))
    if settings.protect_sage_maker_images:
        sources.append(("SageMaker", lambda: SageMakerImages(client_for("sagemaker")).references()))
    if settings.protect_code_build_images:
        sources.append(("CodeBuild", lambda: CodeBuildImages(client_for("codebuild")).references()))
    if settings.eks_clusters:
        patterns = settings.eks_clusters
        sources.append(("EKS", lambda: _eks_images(patterns, client_for)))
    if settings.extra_image_references:
        read = references or extra_references(settings, client_for)
        assert read is not None, "extra_references reads any document the settings name"
        sources.append((settings.extra_image_references, read))
    for name, references in sources:
        try:
            for reference, holder in references():
                in_use.add(reference, holder)
        except _HolderUnreadable as unreadable:
            error = unreadable.error
            raise UsageUnavailable(
                f"images in use could not be read from {name}: the task definition of "
                f"{unreadable.holder} can't be described: {error_code(error)}: {error}"
            ) from error
        except (ClientError, BotoCoreError) as error:
            raise UsageUnavailable(
                f"images in use could not be read from {name}: {error_code(error)}: {error}"
            ) from error
        except ClusterUnreadable as unreadable:
            raise UsageUnavailable(_cluster_problem(unreadable, client_for)) from unreadable
        except ScheduleUnreadable as error:
            raise UsageUnavailable(f"images in use could not be read: {error}") from error
        except ExtraReferencesError as error:
            raise UsageUnavailable(str(error)) from error
    if in_use.unparsed:
        raise UsageUnavailable(
            f"{len(in_use.unparsed)} image reference(s) in use could not be read, e.g. "
            f"{in_use.unparsed[0]}"
        )
    return in_use


def learn_usage(source: Callable[[], InUse], logger: Any | None = None) -> Usage:
    """What `source` finds in use or, when it raises UsageUnavailable, nothing and why (then
    nothing is deleted). With a logger, that is logged as the run's error."""
    try:
        return Usage(source())
    except UsageUnavailable as error:
        if logger is not None:
            logger.error(
                f"deleting nothing this run: {error}",
                extra={ev.EVENT: ev.USAGE_UNAVAILABLE, ev.REASON: str(error)},
            )
        return Usage(InUse(), str(error))
