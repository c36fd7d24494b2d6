"""``kaudit policy check`` as functions: load and validate a policy file, describe its rules.

``kaudit policy match`` lives in jobs/ingest/match.py: it runs raw lines through ingest's own
classification, which the policy package must not import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.policy.loader import load_default_policy, load_policy
from jobs.policy.model import GroupResources, Policy, PolicyRule

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class RuleSummary:
    """One rule as ``kaudit policy check`` lists it."""

    index: int
    level: str
    line: int | None
    selectors: str


def load(policy_file: Path | None) -> Policy:
    """The policy file, or the embedded ACK policy; raises PolicyError when it is invalid."""
    return load_default_policy() if policy_file is None else load_policy(policy_file)


def _group_summary(entry: GroupResources) -> str:
    group = "core" if entry.group == "" else entry.group
    names = f" names={','.join(entry.resource_names)}" if entry.resource_names else ""
    return f"{group}:{','.join(entry.resources) if entry.resources else '(all)'}{names}"


def describe_rule(rule: PolicyRule) -> str:
    """One-line selector summary, e.g. ``users=[kubelet] verbs=[get] resources=[core:nodes]``."""
    parts = [
        f"{label}=[{', '.join(values)}]"
        for label, values in (
            ("users", rule.users),
            ("userGroups", rule.user_groups),
            ("verbs", rule.verbs),
            ("namespaces", rule.namespaces),
            ("resources", tuple(_group_summary(e) for e in rule.resources)),
            ("nonResourceURLs", rule.non_resource_urls),
            ("omitStages", rule.omit_stages),
        )
        if values
    ]
    if rule.omit_managed_fields is not None:
        parts.append(f"omitManagedFields={str(rule.omit_managed_fields).lower()}")
    return " ".join(parts) or "(catch-all)"


def run_check(policy: Policy) -> list[RuleSummary]:
    """The rules of a loaded (so validated) policy, in order."""
    return [
        RuleSummary(index, rule.level, rule.line, describe_rule(rule))
        for index, rule in enumerate(policy.rules)
    ]
