"""Compile an audit Policy into Spark SQL Columns (no UDFs): first matching rule per event.

The matcher does not see the Event, it sees the request's authorizer attributes; they are
rebuilt from EVENTS columns as in spec §1.5, then each rule becomes one boolean Column
(spec §1.3) and the rules become a ``CASE WHEN`` chain in rule order (first match wins, §1.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType

from jobs.policy.model import GROUP_WILDCARD, GroupResources, Policy, PolicyError, PolicyRule
from jobs.vocab import LEVEL_NONE, LEVEL_RANK

POLICY_COLUMNS = ("policy_rule", "policy_level", "policy_omit_stages", "policy_omit_managed_fields")
_STRINGS = ArrayType(StringType())
_CREATE = "create"
# Go's URL.Path decoding keeps "+" (only query decoding turns it into a space); Java's
# URLDecoder behind url_decode does not, so a literal "+" is protected first.
_PLUS, _PLUS_ESCAPED = "+", "%2B"


@dataclass(frozen=True)
class RequestAttributes:
    """The authorizer attributes the policy matched on, as non-null Columns (spec §1.2, §1.5)."""

    has_user: Column
    user: Column
    groups: Column
    verb: Column
    is_resource: Column
    api_group: Column
    resource: Column
    subresource: Column
    namespace: Column
    name: Column
    path: Column


def _str(col_name: str) -> Column:
    return F.coalesce(F.col(col_name), F.lit(""))


def request_path(uri: Column) -> Column:
    """URL path of a logged requestURI: cut at the first "?", then percent-decoded (Go URL.Path)."""
    raw_path = F.substring_index(F.coalesce(uri, F.lit("")), "?", 1)
    decoded = F.try_url_decode(F.replace(raw_path, F.lit(_PLUS), F.lit(_PLUS_ESCAPED)))
    # An undecodable path never reaches the apiserver (net/http answers 400); keep it as logged.
    return F.coalesce(decoded, raw_path)


def request_attributes() -> RequestAttributes:
    """Rebuild the attributes from EVENTS columns.

    Reads user_name, user_groups, verb, request_uri, object_ref_present, api_group, resource,
    subresource, namespace, object_name. Never impersonated_user: the policy runs before
    impersonation. ``create`` without a subresource had name "" when the policy ran, whatever
    the logged objectRef.name says.
    """
    verb = _str("verb")
    subresource = _str("subresource")
    name = F.when((verb == _CREATE) & (subresource == ""), F.lit("")).otherwise(_str("object_name"))
    return RequestAttributes(
        has_user=F.col("user_name").isNotNull(),
        user=_str("user_name"),
        groups=F.coalesce(F.col("user_groups"), F.array().cast(_STRINGS)),
        verb=verb,
        is_resource=F.coalesce(F.col("object_ref_present"), F.lit(False)),
        api_group=_str("api_group"),
        resource=_str("resource"),
        subresource=subresource,
        namespace=_str("namespace"),
        name=name,
        path=request_path(F.col("request_uri")),
    )


def _any(conditions: list[Column]) -> Column:
    return reduce(lambda a, b: a | b, conditions) if conditions else F.lit(False)


def _all(conditions: list[Column]) -> Column:
    return reduce(lambda a, b: a & b, conditions) if conditions else F.lit(True)


def _isin(col: Column, values: tuple[str, ...]) -> Column:
    return col.isin(*values)


def _resource_pattern(pattern: str, attrs: RequestAttributes) -> Column:
    combined = F.when(attrs.subresource == "", attrs.resource).otherwise(
        F.concat(attrs.resource, F.lit("/"), attrs.subresource)
    )
    matches = [combined == pattern]
    if pattern.startswith("*/"):
        matches.append((attrs.subresource != "") & (attrs.subresource == pattern[2:]))
    if pattern.endswith("/*"):
        # Quirk kept from checker.go: "pods/*" also matches bare "pods" (no subresource needed).
        matches.append(attrs.resource == pattern[:-2])
    return _any(matches)


def _group_entry(entry: GroupResources, attrs: RequestAttributes) -> Column:
    group_ok = F.lit(True) if entry.group == GROUP_WILDCARD else attrs.api_group == entry.group
    if not entry.resources:
        return group_ok
    if "*" in entry.resources:
        patterns = F.lit(True)
    else:
        patterns = _any([_resource_pattern(p, attrs) for p in entry.resources])
    names_ok = _isin(attrs.name, entry.resource_names) if entry.resource_names else F.lit(True)
    return group_ok & names_ok & patterns


def _non_resource_url(pattern: str, path: Column) -> Column:
    if pattern == "*":
        return F.lit(True)
    if pattern.endswith("*"):
        # Plain string prefix: "/healthz*" matches "/healthzfoo" too.
        return path.startswith(pattern.rstrip("*"))
    return path == pattern


def rule_matches(rule: PolicyRule, attrs: RequestAttributes) -> Column:
    """Boolean Column: does ``rule`` match the request (spec §1.3, steps 1–7)?"""
    conditions: list[Column] = []
    if rule.users:
        conditions.append(attrs.has_user & _isin(attrs.user, rule.users))
    if rule.user_groups:
        wanted = F.array(*[F.lit(g) for g in rule.user_groups])
        overlap = F.coalesce(F.arrays_overlap(attrs.groups, wanted), F.lit(False))
        conditions.append(attrs.has_user & overlap)
    if rule.verbs:
        conditions.append(_isin(attrs.verb, rule.verbs))  # "*" is a literal verb here
    if rule.is_resource_rule:
        conditions.append(attrs.is_resource)
        if rule.namespaces:
            conditions.append(_isin(attrs.namespace, rule.namespaces))
        if rule.resources:
            conditions.append(_any([_group_entry(entry, attrs) for entry in rule.resources]))
    elif rule.non_resource_urls:
        conditions.append(~attrs.is_resource)
        conditions.append(_any([_non_resource_url(p, attrs.path) for p in rule.non_resource_urls]))
    return _all(conditions)


def policy_rule_index(policy: Policy) -> Column:
    """0-based index of the first matching rule, null when no rule matches."""
    attrs = request_attributes()
    chain: Column | None = None
    for index, rule in enumerate(policy.rules):
        matched = rule_matches(rule, attrs)
        chain = (
            F.when(matched, F.lit(index)) if chain is None else chain.when(matched, F.lit(index))
        )
    if chain is None:
        raise PolicyError("a policy must have at least one rule")
    return chain.otherwise(F.lit(None).cast("int"))


def _per_rule(values: list[Column], rule_index: Column, fallback: Column) -> Column:
    return F.coalesce(F.get(F.array(*values), rule_index), fallback)


def _stage_array(stages: tuple[str, ...]) -> Column:
    return F.array(*[F.lit(s) for s in stages]).cast(_STRINGS)


def policy_level(policy: Policy, rule_index: Column) -> Column:
    """The matched rule's level; "None" when no rule matched."""
    return _per_rule([F.lit(r.level) for r in policy.rules], rule_index, F.lit(LEVEL_NONE))


def policy_omit_stages(policy: Policy, rule_index: Column) -> Column:
    """Effective omitStages (policy ∪ rule) as array<string>."""
    per_rule = [_stage_array(policy.effective_omit_stages(i)) for i in range(len(policy.rules))]
    return _per_rule(per_rule, rule_index, _stage_array(policy.effective_omit_stages(None)))


def policy_omit_managed_fields(policy: Policy, rule_index: Column) -> Column:
    """Effective omitManagedFields: the rule's override, else the policy's value."""
    per_rule = [F.lit(policy.effective_omit_managed_fields(i)) for i in range(len(policy.rules))]
    return _per_rule(per_rule, rule_index, F.lit(policy.omit_managed_fields))


def level_rank(level: Column) -> Column:
    """None=0 < Metadata=1 < Request=2 < RequestResponse=3; unknown or null ranks 0."""
    ranks = F.create_map(
        *[x for lvl, rank in LEVEL_RANK.items() for x in (F.lit(lvl), F.lit(rank))]
    )
    return F.coalesce(F.try_element_at(ranks, F.coalesce(level, F.lit(""))), F.lit(0))


def with_policy_evaluation(df: DataFrame, policy: Policy) -> DataFrame:
    """Add the policy's verdict for each event.

    Requires the EVENTS columns read by :func:`request_attributes`. Adds policy_rule (int,
    null = no rule matched), policy_level (string, "None" when no rule matched),
    policy_omit_stages (array<string>) and policy_omit_managed_fields (boolean).
    """
    rule = F.col("policy_rule")
    return (
        df.withColumn("policy_rule", policy_rule_index(policy))
        .withColumns(
            {
                "policy_level": policy_level(policy, rule),
                "policy_omit_stages": policy_omit_stages(policy, rule),
                "policy_omit_managed_fields": policy_omit_managed_fields(policy, rule),
            }
        )
        .select(*[c for c in df.columns if c not in POLICY_COLUMNS], *POLICY_COLUMNS)
    )
