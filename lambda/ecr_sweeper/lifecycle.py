"""ECR lifecycle policies: parse and validate them as the ECR API would, and evaluate them offline.

Pure: no boto3, no Powertools. The semantics follow the ECR user guide ("Lifecycle policies",
"Lifecycle policy properties", "Examples of lifecycle policies"); docs/lifecycle-policies.md
states the exact interpretation and the one extension (sinceImagePulled with expire).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from ecr_sweeper.model import Image

TagStatus = Literal["tagged", "untagged", "any"]
CountType = Literal["imageCountMoreThan", "sinceImagePushed", "sinceImagePulled"]

TAG_STATUSES: tuple[str, ...] = ("tagged", "untagged", "any")
COUNT_TYPES: tuple[str, ...] = ("imageCountMoreThan", "sinceImagePushed", "sinceImagePulled")
SINCE_COUNT_TYPES: tuple[str, ...] = ("sinceImagePushed", "sinceImagePulled")
COUNT_UNITS: tuple[str, ...] = ("days",)
ACTION_TYPES: tuple[str, ...] = ("expire",)

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
    "countType",
    "countUnit",
    "countNumber",
)
_ACTION_KEYS = ("type",)
_RESPONSE_KEYS = ("registryId", "repositoryName", "lifecyclePolicyText", "lastEvaluatedAt")
"""Keys of the object `aws ecr get-lifecycle-policy` prints."""

_ARCHIVE_SELECTION_KEYS = ("storageClass",)
_ARCHIVE_ACTION_KEYS = ("targetStorageClass",)
_ARCHIVE_COUNT_TYPES = ("sinceImageTransitioned",)
_ARCHIVE_ACTION_TYPES = ("transition",)
_NOT_SUPPORTED = "ECR's archive storage class is not supported yet by ecr-sweeper"


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

    def matches(self, image: Image) -> bool:
        """Whether the image is among this rule's tag selection (the count is not considered)."""
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
    action: str = "expire"

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
    """What the policy does to one image. `reason` is a sentence, for kept images too."""

    digest: str
    expired_by: Rule | None
    reason: str

    @property
    def expired(self) -> bool:
        return self.expired_by is not None


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
    _check_keys(raw, _RULE_KEYS, (), where, "")
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


def _check_keys(
    raw: dict[str, Any], accepted: tuple[str, ...], archive: tuple[str, ...], where: str, path: str
) -> None:
    for key in raw:
        if key in archive:
            raise PolicyError(f"{where}: {path}{key}: {_NOT_SUPPORTED}")
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
    _check_keys(raw, _SELECTION_KEYS, _ARCHIVE_SELECTION_KEYS, where, "selection.")
    for required in ("tagStatus", "countType", "countNumber"):
        if required not in raw:
            raise PolicyError(f"{where}: selection.{required}: missing")
    if raw["tagStatus"] not in TAG_STATUSES:
        raise PolicyError(
            f"{where}: selection.tagStatus: {json.dumps(raw['tagStatus'], default=repr)}; "
            f"accepted values are {', '.join(TAG_STATUSES)}"
        )
    if raw["countType"] in _ARCHIVE_COUNT_TYPES:
        raise PolicyError(f"{where}: selection.countType: {raw['countType']!r}: {_NOT_SUPPORTED}")
    return Selection(
        tag_status=raw["tagStatus"],
        tag_prefix_list=_tag_list(raw, "tagPrefixList", where),
        tag_pattern_list=_tag_list(raw, "tagPatternList", where),
        count_type=raw["countType"],
        count_unit=raw.get("countUnit"),
        count_number=raw["countNumber"],
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


def _parse_action(raw: Any, where: str) -> str:
    if raw is _MISSING:
        raise PolicyError(f'{where}: action: missing; give {{"type": "expire"}}')
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: action: expected an object, got {_kind(raw)}")
    _check_keys(raw, _ACTION_KEYS, _ARCHIVE_ACTION_KEYS, where, "action.")
    action_type = raw.get("type", _MISSING)
    if action_type is _MISSING:
        raise PolicyError(f'{where}: action.type: missing; the accepted value is "expire"')
    if action_type in _ARCHIVE_ACTION_TYPES:
        raise PolicyError(f"{where}: action.type: {action_type!r}: {_NOT_SUPPORTED}")
    if action_type not in ACTION_TYPES:
        raise PolicyError(
            f"{where}: action.type: {json.dumps(action_type, default=repr)}; the accepted "
            'value is "expire"'
        )
    return str(action_type)


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
        raise PolicyError(f'{where}: action.type: {rule.action!r}; the accepted value is "expire"')
    _check_selection(rule.selection, where)


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
            "only with sinceImagePushed or sinceImagePulled"
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
    highest = max(rule.priority for rule in rules)
    for position, rule in enumerate(rules, start=1):
        if rule.selection.tag_status == "any" and rule.priority != highest:
            raise PolicyError(
                f'{_where(position, rule.priority)}: selection.tagStatus: a rule with "any" '
                f"must have the highest rulePriority (be applied last), but another rule has "
                f"rulePriority {highest}"
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
        selected["countType"] = selection.count_type
        if selection.count_unit is not None:
            selected["countUnit"] = selection.count_unit
        selected["countNumber"] = selection.count_number
        document: dict[str, Any] = {"rulePriority": rule.priority}
        if rule.description:
            document["description"] = rule.description
        document["selection"] = selected
        document["action"] = {"type": rule.action}
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
    if selection.count_type == "imageCountMoreThan":
        for index, image in enumerate(selected):
            if index < limit:
                reason = f"among the newest {limit} images selected by {rule.label}"
                result.findings[image.digest] = _Finding(False, reason)
            else:
                reason = (
                    f"not among the newest {limit} images selected by {rule.label} "
                    f"(number {index + 1} of {len(selected)}, newest first)"
                )
                result.findings[image.digest] = _Finding(True, reason)
        return result
    for image in selected:
        if selection.count_type == "sinceImagePulled" and image.last_pulled_at is not None:
            what, moment = "last pulled", image.last_pulled_at
        elif selection.count_type == "sinceImagePulled":
            what, moment = "never pulled; pushed", image.pushed_at
        else:
            what, moment = "pushed", image.pushed_at
        age = now - moment
        older = age > timedelta(days=limit)
        comparison = "more than" if older else "not more than"
        reason = f"{what} {_days(age, limit)}, {comparison} {days(limit)} ({rule.label})"
        result.findings[image.digest] = _Finding(older, reason)
    return result


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
        return Verdict(image.digest, None, "kept: matches no rule")
    first = matching[0]
    finding = first.findings[image.digest]
    if finding.marks:
        return Verdict(image.digest, first.rule, f"expire: {finding.reason}")
    overruled = next((found for found in matching[1:] if found.findings[image.digest].marks), None)
    if overruled is None:
        return Verdict(image.digest, None, f"kept: {finding.reason}")
    return Verdict(
        image.digest,
        None,
        f"kept: its tags match {first.rule.label} (higher priority), which does not expire it "
        f"({finding.reason}); {overruled.rule.label} alone would expire it "
        f"({overruled.findings[image.digest].reason})",
    )
