"""Could the policy in force have produced a body-based detection at all?

A detection that reads request bodies (catalogue ``body_needs``) only works where the policy
logged them (level Request or more; docs/audit-policy-semantics.md §2). Per (group, resource,
verb) it needs, the decision uses, in order:

1. the levels actually logged this week for that resource and verb (the strongest evidence);
2. else the policy in force: ``jobs.policy.compile.with_policy_evaluation`` on one probe request
   by an ordinary user (the cluster's configured policy, or the embedded ACK default).

A detection is ``ok`` when at least one of its needs is observable, else ``not_observable``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from jobs.detections.catalogue import CATALOGUE
from jobs.detections.model import STATUS_NOT_OBSERVABLE, STATUS_OK, BodyNeed
from jobs.frames import literal_frame
from jobs.policy.compile import with_policy_evaluation
from jobs.policy.model import Policy
from jobs.schemas import EVENTS
from jobs.vocab import BODY_LEVELS, LEVEL_NONE, LEVEL_RANK

Key = tuple[str, str, str]  # (api group, resource, verb)
PROBE_USER = "kaudit-observability-probe"
CLUSTER_SCOPED = ("clusterroles", "clusterrolebindings")
_RANK_TO_LEVEL = {rank: level for level, rank in LEVEL_RANK.items()}
_PROBE_FIELDS = (
    "user_name", "user_groups", "verb", "request_uri", "object_ref_present", "api_group",
    "resource", "subresource", "namespace", "object_name",
)  # fmt: skip


def body_need_keys() -> list[Key]:
    """Every (group, resource, verb) some detection reads bodies of, sorted."""
    return sorted(
        {(n.group, n.resource, v) for d in CATALOGUE for n in d.body_needs for v in n.verbs}
    )


def summarise_body_levels(events_df: DataFrame) -> DataFrame:
    """(api_group, resource, verb, events, max_level) over the events ``body_need_keys`` cover.

    Only main-resource events count (no subresource); max_level is the highest level logged.
    """
    wanted = F.lit(False)
    for group, resource, verb in body_need_keys():
        wanted = wanted | (
            (F.col("api_group") == group)
            & (F.col("resource") == resource)
            & (F.col("verb") == verb)
        )
    rank = F.lit(0)
    for level, value in LEVEL_RANK.items():
        rank = F.when(F.col("level") == level, F.lit(value)).otherwise(rank)
    return (
        events_df.filter(wanted & (F.coalesce(F.col("subresource"), F.lit("")) == ""))
        .groupBy("api_group", "resource", "verb")
        .agg(F.count(F.lit(1)).alias("events"), F.max(rank).alias("max_level_rank"))
        .select("api_group", "resource", "verb", "events", "max_level_rank")
    )


def policy_source(policy_path: Path | None) -> str:
    """How a basis text names the policy whose levels it quotes."""
    return f"policy {policy_path}" if policy_path else "embedded ACK policy"


def _probe_row(key: Key) -> dict[str, Any]:
    group, resource, verb = key
    namespace = "" if resource in CLUSTER_SCOPED else "default"
    prefix = f"/apis/{group}/v1" if group else "/api/v1"
    scope = f"/namespaces/{namespace}" if namespace else ""
    return {
        "user_name": PROBE_USER, "user_groups": ["system:authenticated"], "verb": verb,
        "request_uri": f"{prefix}{scope}/{resource}", "object_ref_present": True,
        "api_group": group, "resource": resource, "subresource": None,
        "namespace": namespace or None, "object_name": None,
    }  # fmt: skip


def policy_levels(spark: SparkSession, keys: Iterable[Key], policy: Policy) -> dict[Key, str]:
    """The level ``policy`` gives each key for an ordinary user's request."""
    schema = StructType([EVENTS[f] for f in _PROBE_FIELDS])
    rows = [tuple(_probe_row(k)[f] for f in _PROBE_FIELDS) for k in sorted(set(keys))]
    probe_df = literal_frame(spark, rows, schema)  # no Python worker
    levels = with_policy_evaluation(probe_df, policy).select(
        "api_group", "resource", "verb", "policy_level"
    )
    return {(r.api_group, r.resource, r.verb): r.policy_level for r in levels.collect()}


def decide_observability(
    observed: Iterable[Mapping[str, Any]],
    levels: Mapping[Key, str] | None,
    levels_source: str = "policy",
) -> tuple[dict[str, str], dict[str, str]]:
    """(status per detection id, basis text per body-reading detection id)."""
    seen: dict[Key, tuple[int, str]] = {}
    for row in observed:
        key = (row["api_group"], row["resource"], row["verb"])
        level = _RANK_TO_LEVEL.get(int(row["max_level_rank"]), LEVEL_NONE)
        seen[key] = (int(row["events"]), level)
    statuses, bases = {}, {}
    for det in CATALOGUE:
        if not det.body_needs:
            statuses[det.id] = STATUS_OK
            continue
        verdicts = [
            _verdict(need, verb, seen, levels, levels_source)
            for need in det.body_needs
            for verb in need.verbs
        ]
        observable = any(ok for ok, _ in verdicts)
        statuses[det.id] = STATUS_OK if observable else STATUS_NOT_OBSERVABLE
        bases[det.id] = "; ".join(text for _, text in verdicts)
    return statuses, bases


def observability_for_week(
    spark: SparkSession, events_df: DataFrame, policy: Policy, source: str
) -> tuple[dict[str, str], dict[str, str]]:
    """``decide_observability`` for one week: the levels logged, else ``policy``'s levels."""
    observed = [r.asDict() for r in summarise_body_levels(events_df).collect()]
    seen = {(r["api_group"], r["resource"], r["verb"]) for r in observed if r["events"]}
    missing = [k for k in body_need_keys() if k not in seen]
    levels = policy_levels(spark, missing, policy) if missing else {}
    return decide_observability(observed, levels, source if missing else "policy")


def _verdict(
    need: BodyNeed,
    verb: str,
    seen: Mapping[Key, tuple[int, str]],
    levels: Mapping[Key, str] | None,
    levels_source: str,
) -> tuple[bool, str]:
    key = (need.group, need.resource, verb)
    label = f"{need.resource} {verb}"
    if key in seen and seen[key][0] > 0:
        events, level = seen[key]
        return level in BODY_LEVELS, f"{label}: logged at {level} ({events} events)"
    if levels is not None and key in levels:
        level = levels[key]
        return level in BODY_LEVELS, f"{label}: {levels_source} level {level} (no events)"
    return True, f"{label}: unknown level (no events, no policy)"
