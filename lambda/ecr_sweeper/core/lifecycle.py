"""ECR lifecycle policies: parse and validate them as the ECR API would, and evaluate them offline.

Pure: no boto3, no Powertools. The semantics follow the ECR user guide ("Lifecycle policies",
"Lifecycle policy properties", "Examples of lifecycle policies", "Archiving an image");
docs/lifecycle-policies.md states the exact interpretation, the readings taken where the guide is
silent, and the one extension (sinceImagePulled with expire).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from ecr_sweeper.core.model import Action, Image, ImageStatus

TagStatus = Literal["tagged", "untagged", "any"]
CountType = Literal[
    "imageCountMoreThan", "sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned"
]
StorageClass = Literal["standard", "archive"]
ActionType = Literal["expire", "transition"]

TAG_STATUSES: tuple[str, ...] = ("tagged", "untagged", "any")
COUNT_TYPES: tuple[str, ...] = (
    "imageCountMoreThan",
    "sinceImagePushed",
    "sinceImagePulled",
    "sinceImageTransitioned",
)
SINCE_COUNT_TYPES: tuple[str, ...] = (
    "sinceImagePushed",
    "sinceImagePulled",
    "sinceImageTransitioned",
)
COUNT_UNITS: tuple[str, ...] = ("days",)
STORAGE_CLASSES: tuple[str, ...] = ("standard", "archive")
ACTION_TYPES: tuple[str, ...] = ("expire", "transition")
TARGET_STORAGE_CLASSES: tuple[str, ...] = ("archive",)
ARCHIVE_MINIMUM_DAYS = 90
"""Archived images have a 90-day minimum storage duration; ECR refuses rules that delete them
sooner."""

_CLASS_OF_STATUS: dict[ImageStatus, str | None] = {
    ImageStatus.ACTIVE: "standard",
    ImageStatus.ARCHIVED: "archive",
    ImageStatus.ACTIVATING: None,
}
"""The storage class whose rules see an image; ACTIVATING images are seen by no rule."""

MAX_RULES = 50
"""ECR accepts at most 50 rules in one policy."""
MAX_POLICY_CHARACTERS = 30_720
"""ECR accepts lifecycle policy text of at most 30,720 characters."""
MAX_WILDCARDS = 4
"""ECR accepts at most four '*' in one tagPatternList entry."""
MAX_COUNT_NUMBER = 1_000_000
"""Beyond any image count (ECR's quota is 100,000 per repository) or day count worth meaning;
larger numbers would overflow date arithmetic."""
MAX_TAG_LENGTH = 300
"""An ECR image tag has at most 300 characters, so a longer list entry could never match."""

_TOP_LEVEL_KEYS = ("rules",)
_RULE_KEYS = ("rulePriority", "description", "selection", "action")
_SELECTION_KEYS = (
    "tagStatus",
    "tagPrefixList",
    "tagPatternList",
    "storageClass",
    "countType",
    "countUnit",
    "countNumber",
)
_ACTION_KEYS = ("type", "targetStorageClass")
_RESPONSE_KEYS = ("registryId", "repositoryName", "lifecyclePolicyText", "lastEvaluatedAt")
"""Keys of the object `aws ecr get-lifecycle-policy` prints."""


class PolicyError(ValueError):
    """A lifecycle policy ECR would refuse; the message names the rule and the field."""


@dataclass(frozen=True, kw_only=True)
class Selection:
    """Which images a rule looks at (tag selection) and which of them it expires (count)."""

    tag_status: TagStatus
    tag_prefix_list: tuple[str, ...] = ()
    tag_pattern_list: tuple[str, ...] = ()
    count_type: CountType
    count_unit: str | None = None
    count_number: int
    storage_class: StorageClass = "standard"

    def matches(self, image: Image) -> bool:
        """Whether the image is among this rule's selection: its storage class, then its tags.

        The count is not considered. Archived images are seen only by archive rules, active
        images only by standard rules, and images being restored (ACTIVATING) by none.
        """
        if _CLASS_OF_STATUS[image.status] != self.storage_class:
            return False
        if self.tag_status == "any":
            return True
        if self.tag_status == "untagged":
            return not image.tags
        if not image.tags:
            return False
        if self.tag_prefix_list:
            return all(
                any(tag.startswith(prefix) for tag in image.tags) for prefix in self.tag_prefix_list
            )
        return all(
            any(_pattern(pattern).fullmatch(tag) for tag in image.tags)
            for pattern in self.tag_pattern_list
        )


@dataclass(frozen=True)
class Rule:
    """One lifecycle rule; a lower priority number is applied first."""

    priority: int
    description: str
    selection: Selection
    action: ActionType = "expire"
    """`expire` deletes; `transition` moves a standard image to the archive storage class."""

    @property
    def label(self) -> str:
        """How reasons and messages name this rule, e.g. 'rule 2 ("keep 10 tagged")'."""
        if self.description:
            return f"rule {self.priority} ({json.dumps(self.description, ensure_ascii=False)})"
        return f"rule {self.priority}"


@dataclass(frozen=True)
class LifecyclePolicy:
    """A valid policy: 1 to 50 rules, sorted by priority. Construction validates it."""

    rules: tuple[Rule, ...]

    def __post_init__(self) -> None:
        _check_rules(self.rules)
        priorities = [rule.priority for rule in self.rules]
        if priorities != sorted(priorities):
            raise PolicyError("rules: must be sorted by rulePriority (parse_policy sorts them)")


@dataclass(frozen=True)
class Verdict:
    """What the policy does to one image. `reason` is a sentence, for kept images too.

    `expired_by` is the rule that deletes the image; `transitioned_by` the rule that moves it to
    the archive storage class. At most one of them is set.
    """

    digest: str
    expired_by: Rule | None
    reason: str
    transitioned_by: Rule | None = None

    @property
    def expired(self) -> bool:
        return self.expired_by is not None

    @property
    def action(self) -> Action:
        """KEEP, EXPIRE or TRANSITION."""
        if self.expired_by is not None:
            return Action.EXPIRE
        if self.transitioned_by is not None:
            return Action.TRANSITION
        return Action.KEEP

    @property
    def acted_by(self) -> Rule | None:
        """The rule that expires or transitions the image, if any."""
        return self.expired_by or self.transitioned_by


# --- parsing -------------------------------------------------------------------------------------


def parse_policy(document: Any) -> LifecyclePolicy:
    """Read a policy as ECR would accept it, or raise PolicyError naming rule and field.

    Accepts the policy object, its JSON text, or the object `aws ecr get-lifecycle-policy`
    prints (the policy is then the JSON string under lifecyclePolicyText).
    """
    text: str | None = None
    if isinstance(document, str):
        text = document
        document = _load_json(text, "policy text")
    if not isinstance(document, dict):
        raise PolicyError(
            'expected a lifecycle policy: a JSON object with "rules" (or the object '
            f"`aws ecr get-lifecycle-policy` prints), got {_kind(document)}"
        )
    if "lifecyclePolicyText" in document:
        for key in document:
            if key not in _RESPONSE_KEYS:
                raise PolicyError(
                    f"{key}: unknown key next to lifecyclePolicyText; the get-lifecycle-policy "
                    f"object has {', '.join(_RESPONSE_KEYS)}"
                )
        inner = document["lifecyclePolicyText"]
        if not isinstance(inner, str):
            raise PolicyError(
                f"lifecyclePolicyText: expected the policy as a JSON string, got {_kind(inner)}"
            )
        text = inner
        document = _load_json(inner, "lifecyclePolicyText")
        if not isinstance(document, dict):
            raise PolicyError(
                f'lifecyclePolicyText: expected a JSON object with "rules", got {_kind(document)}'
            )
    if text is None:
        text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=repr)
    if len(text) > MAX_POLICY_CHARACTERS:
        raise PolicyError(
            f"policy text: {len(text):,} characters; ECR accepts at most {MAX_POLICY_CHARACTERS:,}"
        )
    rules = _parse_rules(document)
    _check_rules(rules)
    return LifecyclePolicy(tuple(sorted(rules, key=lambda rule: rule.priority)))


MIN_POLICY_CHARACTERS = 100
"""PutLifecyclePolicy refuses lifecyclePolicyText shorter than 100 characters."""


def native_policy_problem(policy: LifecyclePolicy) -> str | None:
    """Why ECR's PutLifecyclePolicy would refuse this (valid) policy, or None.

    What only the native API refuses: `sinceImagePulled` with `expire` (our evaluator's
    extension), and written text outside 100 to 30,720 characters.
    """
    for position, rule in enumerate(policy.rules, start=1):
        if rule.selection.count_type == "sinceImagePulled" and rule.action == "expire":
            return (
                f"{_where(position, rule.priority)}: countType 'sinceImagePulled' with "
                '"expire": ECR\'s PutLifecyclePolicy accepts sinceImagePulled only with '
                '{"type": "transition", "targetStorageClass": "archive"} (expiring by last pull '
                "is ecr-sweeper's extension: put it in lifecyclePolicy, not in a native policy)"
            )
    length = len(json.dumps(policy_document(policy), separators=(",", ":"), ensure_ascii=False))
    if not MIN_POLICY_CHARACTERS <= length <= MAX_POLICY_CHARACTERS:
        return (
            f"policy text: {length:,} characters as written; PutLifecyclePolicy accepts "
            f"{MIN_POLICY_CHARACTERS} to {MAX_POLICY_CHARACTERS:,}"
        )
    return None


def parse_native_policy(document: Any) -> LifecyclePolicy:
    """`parse_policy`, and also refused where ECR's PutLifecyclePolicy alone refuses: a policy
    ecr-sweeper writes to a repository (`policy apply`, nativeLifecyclePolicy)."""
    policy = parse_policy(document)
    problem = native_policy_problem(policy)
    if problem is not None:
        raise PolicyError(problem)
    return policy


def _load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise PolicyError(f"{what}: not valid JSON ({error})") from None


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), f"{json.dumps(value, default=repr)}")


def _parse_rules(document: dict[str, Any]) -> list[Rule]:
    for key in document:
        if key not in _TOP_LEVEL_KEYS:
            raise PolicyError(f'{key}: unknown key at the top level; a policy has only "rules"')
    if "rules" not in document:
        raise PolicyError('rules: missing; a policy is {"rules": [...]} with 1 to 50 rules')
    raw_rules = document["rules"]
    if not isinstance(raw_rules, list):
        raise PolicyError(
            f"rules: expected a list of 1 to {MAX_RULES} rules, got {_kind(raw_rules)}"
        )
    if not raw_rules:
        raise PolicyError(f"rules: empty; give 1 to {MAX_RULES} rules")
    if len(raw_rules) > MAX_RULES:
        raise PolicyError(f"rules: {len(raw_rules)} rules; ECR accepts at most {MAX_RULES}")
    return [_parse_rule(raw, position) for position, raw in enumerate(raw_rules, start=1)]


def _where(position: int, priority: Any) -> str:
    if priority is _MISSING:
        return f"rule {position} (no rulePriority)"
    return f"rule {position} (rulePriority {json.dumps(priority, default=repr)})"


_MISSING: Any = object()


def _parse_rule(raw: Any, position: int) -> Rule:
    if not isinstance(raw, dict):
        raise PolicyError(f"rule {position}: expected a rule object, got {_kind(raw)}")
    where = _where(position, raw.get("rulePriority", _MISSING))
    _check_keys(raw, _RULE_KEYS, where, "")
    priority = raw.get("rulePriority", _MISSING)
    if priority is _MISSING:
        raise PolicyError(f"{where}: rulePriority: missing; give a whole number of 1 or more")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise PolicyError(f"{where}: description: expected a string, got {_kind(description)}")
    selection = _parse_selection(raw.get("selection", _MISSING), where)
    action = _parse_action(raw.get("action", _MISSING), where)
    rule = Rule(priority=priority, description=description, selection=selection, action=action)
    _check_rule(rule, where)
    return rule


def _check_keys(raw: dict[str, Any], accepted: tuple[str, ...], where: str, path: str) -> None:
    for key in raw:
        if key not in accepted:
            scope = path.rstrip(".") or "a rule"
            raise PolicyError(
                f"{where}: {path}{key}: unknown key; {scope} accepts {', '.join(accepted)}"
            )


def _parse_selection(raw: Any, where: str) -> Selection:
    if raw is _MISSING:
        raise PolicyError(f"{where}: selection: missing")
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: selection: expected an object, got {_kind(raw)}")
    _check_keys(raw, _SELECTION_KEYS, where, "selection.")
    for required in ("tagStatus", "countType", "countNumber"):
        if required not in raw:
            raise PolicyError(f"{where}: selection.{required}: missing")
    if raw["tagStatus"] not in TAG_STATUSES:
        raise PolicyError(
            f"{where}: selection.tagStatus: {json.dumps(raw['tagStatus'], default=repr)}; "
            f"accepted values are {', '.join(TAG_STATUSES)}"
        )
    storage_class = raw.get("storageClass", "standard")
    if storage_class not in STORAGE_CLASSES:
        raise PolicyError(
            f"{where}: selection.storageClass: {json.dumps(storage_class, default=repr)}; "
            f"accepted values are {', '.join(STORAGE_CLASSES)}"
        )
    return Selection(
        tag_status=raw["tagStatus"],
        tag_prefix_list=_tag_list(raw, "tagPrefixList", where),
        tag_pattern_list=_tag_list(raw, "tagPatternList", where),
        count_type=raw["countType"],
        count_unit=raw.get("countUnit"),
        count_number=raw["countNumber"],
        storage_class=storage_class,
    )


def _tag_list(raw: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    if key not in raw:
        return ()
    value = raw[key]
    if not isinstance(value, list) or not value:
        raise PolicyError(
            f"{where}: selection.{key}: expected a non-empty list of strings, got "
            f"{json.dumps(value, default=repr)}"
        )
    if raw.get("tagStatus") != "tagged":
        raise PolicyError(
            f'{where}: selection.{key}: only a rule with tagStatus "tagged" takes a tag list; '
            f"this one has tagStatus {json.dumps(raw.get('tagStatus'), default=repr)}"
        )
    return tuple(value)


_ACCEPTED_ACTIONS = '{"type": "expire"} or {"type": "transition", "targetStorageClass": "archive"}'


def _parse_action(raw: Any, where: str) -> ActionType:
    if raw is _MISSING:
        raise PolicyError(f"{where}: action: missing; give {_ACCEPTED_ACTIONS}")
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: action: expected an object, got {_kind(raw)}")
    _check_keys(raw, _ACTION_KEYS, where, "action.")
    action_type = raw.get("type", _MISSING)
    if action_type is _MISSING:
        raise PolicyError(f"{where}: action.type: missing; give {_ACCEPTED_ACTIONS}")
    if action_type not in ACTION_TYPES:
        raise PolicyError(
            f"{where}: action.type: {json.dumps(action_type, default=repr)}; accepted values "
            f"are {', '.join(ACTION_TYPES)}"
        )
    target = raw.get("targetStorageClass", _MISSING)
    if action_type == "transition":
        if target is _MISSING:
            raise PolicyError(
                f'{where}: action.targetStorageClass: missing; a "transition" action needs '
                '"targetStorageClass": "archive"'
            )
        if target not in TARGET_STORAGE_CLASSES:
            raise PolicyError(
                f"{where}: action.targetStorageClass: {json.dumps(target, default=repr)}; the "
                'accepted value is "archive"'
            )
    elif target is not _MISSING:
        raise PolicyError(
            f'{where}: action.targetStorageClass: only a "transition" action takes it; this '
            'action is "expire"'
        )
    return "transition" if action_type == "transition" else "expire"


# --- validation of built rules (also guards rules built in code, e.g. simple_policy) -------------


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_rule(rule: Rule, where: str) -> None:
    if not _is_whole(rule.priority) or rule.priority < 1:
        raise PolicyError(
            f"{where}: rulePriority: expected a whole number of 1 or more, got "
            f"{json.dumps(rule.priority, default=repr)}"
        )
    if not isinstance(rule.description, str):
        raise PolicyError(f"{where}: description: expected a string")
    if rule.action not in ACTION_TYPES:
        raise PolicyError(
            f"{where}: action.type: {rule.action!r}; accepted values are {', '.join(ACTION_TYPES)}"
        )
    _check_selection(rule.selection, where)
    _check_storage_class(rule, where)


def _check_storage_class(rule: Rule, where: str) -> None:
    """The archive tier's rules, as the user guide's lifecycle policy properties state them."""
    selection = rule.selection
    storage_class, count_type = selection.storage_class, selection.count_type
    if storage_class not in STORAGE_CLASSES:
        raise PolicyError(
            f"{where}: selection.storageClass: {json.dumps(storage_class, default=repr)}; "
            f"accepted values are {', '.join(STORAGE_CLASSES)}"
        )
    if count_type == "sinceImageTransitioned" and storage_class != "archive":
        raise PolicyError(
            f"{where}: selection.storageClass: countType 'sinceImageTransitioned' needs "
            '"storageClass": "archive" (it counts days since the image was archived)'
        )
    if storage_class == "archive" and count_type != "sinceImageTransitioned":
        raise PolicyError(
            f"{where}: selection.countType: {count_type!r} can't select archived images; an "
            "archive rule counts only with sinceImageTransitioned (imageCountMoreThan, "
            "sinceImagePushed and sinceImagePulled take only the standard storage class)"
        )
    if storage_class == "archive" and rule.action != "expire":
        raise PolicyError(
            f'{where}: action.type: an archive rule may only "expire"; archived images '
            "can't be transitioned again"
        )
    if count_type == "sinceImageTransitioned" and selection.count_number < ARCHIVE_MINIMUM_DAYS:
        raise PolicyError(
            f"{where}: selection.countNumber: {selection.count_number}; archived images have a "
            f"{ARCHIVE_MINIMUM_DAYS}-day minimum storage duration, so an archive rule must count "
            f"{ARCHIVE_MINIMUM_DAYS} days or more"
        )


def _check_selection(selection: Selection, where: str) -> None:
    status = selection.tag_status
    if status not in TAG_STATUSES:
        raise PolicyError(
            f"{where}: selection.tagStatus: {json.dumps(status, default=repr)}; accepted values "
            f"are {', '.join(TAG_STATUSES)}"
        )
    prefixes, patterns = selection.tag_prefix_list, selection.tag_pattern_list
    if status == "tagged":
        if prefixes and patterns:
            raise PolicyError(
                f"{where}: selection.tagPatternList: give either tagPrefixList or "
                "tagPatternList, not both"
            )
        if not prefixes and not patterns:
            raise PolicyError(
                f'{where}: selection.tagPatternList: a rule with tagStatus "tagged" needs a '
                "non-empty tagPatternList or tagPrefixList"
            )
    elif prefixes or patterns:
        key = "tagPrefixList" if prefixes else "tagPatternList"
        raise PolicyError(
            f'{where}: selection.{key}: only a rule with tagStatus "tagged" takes a tag list; '
            f"this one has tagStatus {status!r}"
        )
    for key, entries in (("tagPrefixList", prefixes), ("tagPatternList", patterns)):
        for entry in entries:
            if not isinstance(entry, str) or not entry:
                raise PolicyError(
                    f"{where}: selection.{key}: entries must be non-empty strings, got "
                    f"{json.dumps(entry, default=repr)}"
                )
            if len(entry) > MAX_TAG_LENGTH:
                raise PolicyError(
                    f"{where}: selection.{key}: entry of {len(entry)} characters; an image tag "
                    f"has at most {MAX_TAG_LENGTH}"
                )
            if key == "tagPatternList" and entry.count("*") > MAX_WILDCARDS:
                raise PolicyError(
                    f"{where}: selection.tagPatternList: {entry!r} has {entry.count('*')} "
                    f"wildcards; ECR accepts at most {MAX_WILDCARDS} '*' per pattern"
                )
    count_type = selection.count_type
    if count_type not in COUNT_TYPES:
        raise PolicyError(
            f"{where}: selection.countType: {json.dumps(count_type, default=repr)}; accepted "
            f"values are {', '.join(COUNT_TYPES)}"
        )
    unit = selection.count_unit
    if count_type in SINCE_COUNT_TYPES:
        if unit is None:
            raise PolicyError(
                f'{where}: selection.countUnit: missing; countType {count_type!r} needs "days"'
            )
        if unit not in COUNT_UNITS:
            raise PolicyError(
                f"{where}: selection.countUnit: {json.dumps(unit, default=repr)}; the accepted "
                'value is "days"'
            )
    elif unit is not None:
        raise PolicyError(
            f"{where}: selection.countUnit: not allowed with countType {count_type!r}; give it "
            "only with sinceImagePushed, sinceImagePulled or sinceImageTransitioned"
        )
    number = selection.count_number
    if not _is_whole(number) or not 1 <= number <= MAX_COUNT_NUMBER:
        raise PolicyError(
            f"{where}: selection.countNumber: expected a whole number from 1 to "
            f"{MAX_COUNT_NUMBER}, got {json.dumps(number, default=repr)}"
        )


def _check_rules(rules: Sequence[Rule]) -> None:
    if not rules:
        raise PolicyError(f"rules: empty; give 1 to {MAX_RULES} rules")
    if len(rules) > MAX_RULES:
        raise PolicyError(f"rules: {len(rules)} rules; ECR accepts at most {MAX_RULES}")
    first_with: dict[int, int] = {}
    for position, rule in enumerate(rules, start=1):
        where = _where(position, rule.priority)
        _check_rule(rule, where)
        if rule.priority in first_with:
            raise PolicyError(
                f"{where}: rulePriority: {rule.priority} is also the priority of rule "
                f"{first_with[rule.priority]}; priorities must be unique"
            )
        first_with[rule.priority] = position
    for position, rule in enumerate(rules, start=1):
        storage_class = rule.selection.storage_class
        highest = max(r.priority for r in rules if r.selection.storage_class == storage_class)
        if rule.selection.tag_status == "any" and rule.priority != highest:
            raise PolicyError(
                f'{_where(position, rule.priority)}: selection.tagStatus: a rule with "any" '
                f"must have the highest rulePriority among the {storage_class} rules (be "
                f"applied last), but another {storage_class} rule has rulePriority {highest}"
            )


# --- documents -----------------------------------------------------------------------------------


def policy_document(policy: LifecyclePolicy) -> dict[str, Any]:
    """The canonical JSON-able document; parse_policy(policy_document(p)) == p."""
    rules: list[dict[str, Any]] = []
    for rule in policy.rules:
        selection = rule.selection
        selected: dict[str, Any] = {"tagStatus": selection.tag_status}
        if selection.tag_prefix_list:
            selected["tagPrefixList"] = list(selection.tag_prefix_list)
        if selection.tag_pattern_list:
            selected["tagPatternList"] = list(selection.tag_pattern_list)
        if selection.storage_class != "standard":
            selected["storageClass"] = selection.storage_class
        selected["countType"] = selection.count_type
        if selection.count_unit is not None:
            selected["countUnit"] = selection.count_unit
        selected["countNumber"] = selection.count_number
        document: dict[str, Any] = {"rulePriority": rule.priority}
        if rule.description:
            document["description"] = rule.description
        document["selection"] = selected
        document["action"] = (
            {"type": "transition", "targetStorageClass": "archive"}
            if rule.action == "transition"
            else {"type": "expire"}
        )
        rules.append(document)
    return {"rules": rules}


def simple_policy(keep_tagged_images: int, untagged_grace_days: int) -> LifecyclePolicy:
    """Compile the simple settings (keepTaggedImages, untaggedGraceDays) into a policy."""
    return LifecyclePolicy(
        (
            Rule(
                priority=1,
                description=f"untagged images older than {days(untagged_grace_days)}",
                selection=Selection(
                    tag_status="untagged",
                    count_type="sinceImagePushed",
                    count_unit="days",
                    count_number=untagged_grace_days,
                ),
            ),
            Rule(
                priority=2,
                description=f"keep the newest {keep_tagged_images} tagged images",
                selection=Selection(
                    tag_status="tagged",
                    tag_pattern_list=("*",),
                    count_type="imageCountMoreThan",
                    count_number=keep_tagged_images,
                ),
            ),
        )
    )


def archiving(policy: LifecyclePolicy, retention_days: int | None) -> LifecyclePolicy:
    """The policy with what it expires archived instead (expiredImageAction=archive).

    Every standard rule becomes a transition rule; archive rules are left as they are. With a
    retention, one more rule deletes archived images that many days after their archiving.
    """
    rules = [
        rule if rule.selection.storage_class == "archive" else replace(rule, action="transition")
        for rule in policy.rules
    ]
    if retention_days is not None:
        rules.append(
            Rule(
                priority=max(rule.priority for rule in rules) + 1,
                description=f"delete images archived more than {days(retention_days)} ago",
                selection=Selection(
                    tag_status="any",
                    storage_class="archive",
                    count_type="sinceImageTransitioned",
                    count_unit="days",
                    count_number=retention_days,
                ),
            )
        )
    return LifecyclePolicy(tuple(rules))


# --- evaluation ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _pattern(pattern: str) -> re.Pattern[str]:
    """A tagPatternList entry as a regex: '*' matches any run of characters, only it is special."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def newest_first(images: Sequence[Image]) -> list[Image]:
    """Images newest pushed first; equal push times are ordered by digest, so order is stable."""
    by_digest = sorted(images, key=lambda image: image.digest)
    return sorted(by_digest, key=lambda image: image.pushed_at, reverse=True)


@dataclass
class _Finding:
    """What one rule's count criterion says about one image of its selection."""

    marks: bool
    reason: str


@dataclass
class _RuleFindings:
    rule: Rule
    findings: dict[str, _Finding] = field(default_factory=dict)


def evaluate(policy: LifecyclePolicy, images: Sequence[Image], now: datetime) -> dict[str, Verdict]:
    """Apply the policy as ECR does; one Verdict per image, keyed by digest.

    Every rule first identifies its tag selection and marks images by its count criterion,
    counting all images of its selection. An image can then be expired only by the first rule
    (lowest priority number) whose tag selection matches it.
    """
    ordered = newest_first(images)
    seen: set[str] = set()
    for image in ordered:
        if image.digest in seen:
            raise ValueError(f"image digest {image.digest} appears more than once")
        seen.add(image.digest)
    all_findings = [_apply_rule(rule, ordered, now) for rule in policy.rules]
    verdicts: dict[str, Verdict] = {}
    for image in ordered:
        verdicts[image.digest] = _verdict(image, all_findings)
    return verdicts


def _apply_rule(rule: Rule, ordered: list[Image], now: datetime) -> _RuleFindings:
    selection = rule.selection
    selected = [image for image in ordered if selection.matches(image)]
    result = _RuleFindings(rule)
    limit = selection.count_number
    label = rule.label
    if selection.count_type == "imageCountMoreThan":
        among = _Finding(False, f"among the newest {limit} images selected by {label}")
        for image in selected[:limit]:
            result.findings[image.digest] = among
        for index, image in enumerate(selected[limit:], start=limit + 1):
            reason = (
                f"not among the newest {limit} images selected by {label} "
                f"(number {index} of {len(selected)}, newest first)"
            )
            result.findings[image.digest] = _Finding(True, reason)
        return result
    for image in selected:
        if selection.count_type == "sinceImageTransitioned":
            if image.last_archived_at is None:
                reason = f"archived, but when is unknown (no lastArchivedAt) ({rule.label})"
                result.findings[image.digest] = _Finding(False, reason)
                continue
            what, moment = "archived", image.last_archived_at
        elif selection.count_type == "sinceImagePulled":
            what, moment = _last_use(image)
        else:
            what, moment = "pushed", image.pushed_at
        age = now - moment
        older = age > timedelta(days=limit)
        comparison = "more than" if older else "not more than"
        reason = f"{what} {_days(age, limit)}, {comparison} {days(limit)} ({label})"
        result.findings[image.digest] = _Finding(older, reason)
    return result


def _last_use(image: Image) -> tuple[str, datetime]:
    """What sinceImagePulled counts from: the last pull, or the restore from archive if later.

    An image never pulled counts from its push. ECR documents the restore case ("never pulled
    since" it was restored counts from lastActivatedAt); the latest of the three is used, which
    never makes an image look older than it is.
    """
    candidates = [("pushed", image.pushed_at)]
    if image.last_activated_at is not None:
        candidates.append(("restored from archive", image.last_activated_at))
    if image.last_pulled_at is not None:
        candidates.append(("last pulled", image.last_pulled_at))
    what, moment = max(candidates, key=lambda candidate: candidate[1])
    if what == "pushed" and image.last_pulled_at is None:
        what = "never pulled; pushed"
    return what, moment


def days(count: int) -> str:
    """'1 day', '2 days': reasons are read by people."""
    return f"{count} day" if count == 1 else f"{count} days"


def _days(age: timedelta, limit: int) -> str:
    if age < timedelta(0):
        return "after the evaluation time"
    days = age / timedelta(days=1)
    text = f"{days:.1f}"
    if float(text) == limit and age != timedelta(days=limit):
        return f"{age} ago"  # rounding would hide which side of the limit it is on
    return f"{text} days ago"


def _verdict(image: Image, all_findings: list[_RuleFindings]) -> Verdict:
    matching = [found for found in all_findings if image.digest in found.findings]
    if not matching:
        if image.status is ImageStatus.ACTIVATING:
            reason = "kept: being restored from archive (ACTIVATING); no rule touches it"
        elif image.status is ImageStatus.ARCHIVED:
            reason = "kept: archived, and no archive rule selects it"
        else:
            reason = "kept: matches no rule"
        return Verdict(image.digest, None, reason)
    first = matching[0]
    finding = first.findings[image.digest]
    if finding.marks and first.rule.action == "transition":
        reason = f"transition to archive: {finding.reason}"
        return Verdict(image.digest, None, reason, transitioned_by=first.rule)
    if finding.marks:
        return Verdict(image.digest, first.rule, f"expire: {finding.reason}")
    overruled = next((found for found in matching[1:] if found.findings[image.digest].marks), None)
    if overruled is None:
        return Verdict(image.digest, None, f"kept: {finding.reason}")
    return Verdict(
        image.digest,
        None,
        f"kept: its tags match {first.rule.label} (higher priority), which does not "
        f"{first.rule.action} it ({finding.reason}); {overruled.rule.label} alone would "
        f"{overruled.rule.action} it ({overruled.findings[image.digest].reason})",
    )
