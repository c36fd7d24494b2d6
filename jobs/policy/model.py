"""The audit Policy as frozen values (spec §1.1); levels and stages (§1.4, §3.1): jobs.vocab."""

from __future__ import annotations

from dataclasses import dataclass, field

from jobs.errors import UsageError
from jobs.vocab import STAGES

API_VERSIONS: tuple[str, ...] = ("audit.k8s.io/v1", "audit.k8s.io/v1beta1", "audit.k8s.io/v1alpha1")
GROUP_WILDCARD = "*"  # resources[].group "*" matches every group (kube-apiserver 1.36+)


class PolicyError(UsageError, ValueError):
    """A policy file that kube-apiserver would refuse; the message names the place in the file."""


@dataclass(frozen=True)
class GroupResources:
    """One ``resources[]`` entry of a rule: a group and optional resource/name filters."""

    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyRule:
    """One rule; empty selector tuples mean "not constrained" (spec §1.3)."""

    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool | None = None  # tri-state: None = inherit the policy's value
    line: int | None = field(default=None, compare=False)  # where the rule starts in its file

    @property
    def is_resource_rule(self) -> bool:
        """True when namespaces or resources decide the match (nonResourceURLs is then ignored)."""
        return bool(self.namespaces or self.resources)


@dataclass(frozen=True)
class Policy:
    """An audit Policy: ordered rules, first match wins (spec §1.4)."""

    rules: tuple[PolicyRule, ...]
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool = False
    api_version: str = "audit.k8s.io/v1"
    source: str = field(default="<memory>", compare=False)
    sha256: str | None = field(default=None, compare=False)  # of the file bytes, for manifests

    def effective_omit_stages(self, rule_index: int | None) -> tuple[str, ...]:
        """Policy ∪ rule omitStages in STAGES order; the policy set alone when no rule matched."""
        stages = set(self.omit_stages)
        if rule_index is not None:
            stages |= set(self.rules[rule_index].omit_stages)
        return tuple(stage for stage in STAGES if stage in stages)

    def effective_omit_managed_fields(self, rule_index: int | None) -> bool:
        """The rule's omitManagedFields when set, else the policy's."""
        if rule_index is not None:
            override = self.rules[rule_index].omit_managed_fields
            if override is not None:
                return override
        return self.omit_managed_fields
