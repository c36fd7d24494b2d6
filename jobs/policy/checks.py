"""Policy conformance checks C1–C12 (spec §7) as Columns, and the marts built from them.

Every check is a boolean Column over EVENTS plus the verdict columns of
:func:`jobs.policy.compile.with_policy_evaluation`. Bodies are only probed as text (``instr``):
JSON is parsed once, at ingest, and never again on event-sized data.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.policy.compile import level_rank, with_policy_evaluation
from jobs.policy.conditions import (
    PATCH_ANNOTATION_PREFIX,
    annotation_with_prefix,
    body_expected_missing,
    exempt_response_started,
    flag,
    is_long_running,
    is_sensitive_resource,
    managed_fields_logged,
    request_received_shape,
)
from jobs.policy.model import Policy
from jobs.vocab import (
    LEVEL_METADATA,
    LEVEL_NONE,
    LEVEL_RANK,
    LEVEL_REQUEST,
    LEVEL_REQUEST_RESPONSE,
    STAGE_REQUEST_RECEIVED,
    STAGE_RESPONSE_STARTED,
)

SEVERITY_CRITICAL, SEVERITY_HIGH, SEVERITY_MEDIUM = "critical", "high", "medium"
SEVERITY_LOW, SEVERITY_INFO = "low", "info"


@dataclass(frozen=True)
class CheckSpec:
    """One §7 check: the value of the ``check`` column and its default severity."""

    code: str
    severity: str


C1 = CheckSpec("C1_LOGGED_BUT_NONE", SEVERITY_HIGH)
C2 = CheckSpec("C2_LEVEL_MISMATCH", SEVERITY_HIGH)
C3 = CheckSpec("C3_REQUEST_OBJECT_TOO_LOW", SEVERITY_HIGH)  # critical on sensitive resources
C4 = CheckSpec("C4_RESPONSE_OBJECT_TOO_LOW", SEVERITY_HIGH)  # critical on sensitive resources
C5 = CheckSpec("C5_OMITTED_STAGE_PRESENT", SEVERITY_MEDIUM)
C6 = CheckSpec("C6_NONRESOURCE_WITH_OBJECTS", SEVERITY_MEDIUM)
C7 = CheckSpec("C7_REQUESTRECEIVED_SHAPE", SEVERITY_MEDIUM)
C8 = CheckSpec("C8_UNEXPECTED_RESPONSESTARTED", SEVERITY_LOW)
C9 = CheckSpec("C9_MANAGED_FIELDS_NOT_OMITTED", SEVERITY_LOW)
C10 = CheckSpec("C10_PATCH_ANNOTATION_TOO_LOW", SEVERITY_MEDIUM)
C11 = CheckSpec("C11_TIMESTAMP_ORDER", SEVERITY_MEDIUM)
C12 = CheckSpec("C12_BODY_EXPECTED_MISSING", SEVERITY_INFO)
CHECKS: tuple[CheckSpec, ...] = (C1, C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12)

EXAMPLES_PER_FINDING = 5
TOP_MISMATCHES = 5
# The row shape every finding source produces; summarise_policy_findings groups these.
FINDING_COLUMNS = (
    "cluster", "master", "rule", "check", "severity", "audit_id", "stage", "evidence_sha256",
    "line_no", "verb", "resource", "namespace", "object_name", "user_name", "request_received_ts",
)  # fmt: skip
EXAMPLE_FIELDS = (
    "audit_id", "stage", "evidence_sha256", "line_no", "verb", "resource", "namespace",
    "object_name", "user_name",
)  # fmt: skip
MART_KEYS = ("cluster", "master", "rule", "check", "severity")
POLICY_FINDINGS_COLUMNS = (*MART_KEYS, "events", "requests", "example_events")
POLICY_FIT_COLUMNS = (
    "cluster",
    "master",
    "events",
    "events_matching_level",
    "share",
    "top_mismatches",
)


def check_conditions() -> list[tuple[CheckSpec, Column, Column]]:
    """(check, condition, severity) for C1–C12; conditions are never null.

    Reads EVENTS columns and the policy_* columns of ``with_policy_evaluation``.
    """
    level, expected, stage = F.col("level"), F.col("policy_level"), F.col("stage")
    # C3/C4 use both the logged and the evaluated level: a body beyond either is a finding.
    lowest = F.least(level_rank(level), level_rank(expected))
    has_request = F.col("request_object").isNotNull()
    has_response = F.col("response_object").isNotNull()
    conditions = {
        C1: expected == LEVEL_NONE,
        C2: ~level.eqNullSafe(expected),
        C3: has_request & (lowest < LEVEL_RANK[LEVEL_REQUEST]),
        C4: has_response & (lowest < LEVEL_RANK[LEVEL_REQUEST_RESPONSE]),
        C5: F.array_contains(F.col("policy_omit_stages"), stage),
        C6: ~flag(F.col("object_ref_present")) & (has_request | has_response),
        C7: (stage == STAGE_REQUEST_RECEIVED) & request_received_shape(),
        C8: (stage == STAGE_RESPONSE_STARTED) & ~is_long_running() & ~exempt_response_started(),
        C9: F.col("policy_omit_managed_fields") & managed_fields_logged(),
        C10: annotation_with_prefix(PATCH_ANNOTATION_PREFIX)
        & ((level == LEVEL_METADATA) | (expected == LEVEL_METADATA)),
        C11: F.col("stage_ts") < F.col("request_received_ts"),
        C12: body_expected_missing(),
    }
    body = F.when(is_sensitive_resource(), F.lit(SEVERITY_CRITICAL)).otherwise(F.lit(SEVERITY_HIGH))
    severity = {C3: body, C4: body}
    return [(c, flag(conditions[c]), severity.get(c, F.lit(c.severity))) for c in CHECKS]


def with_policy_findings(df: DataFrame, policy: Policy) -> DataFrame:
    """Add the policy verdict columns and ``policy_findings`` array<struct<check, severity>>.

    Requires the EVENTS columns; an event with no finding gets an empty array.
    """
    findings = F.array(
        *[
            F.when(cond, F.struct(F.lit(spec.code).alias("check"), sev.alias("severity")))
            for spec, cond, sev in check_conditions()
        ]
    )
    return with_policy_evaluation(df, policy).withColumn(
        "policy_findings", F.filter(findings, lambda finding: finding.isNotNull())
    )


def explode_policy_findings(df: DataFrame, policy: Policy) -> DataFrame:
    """One row per (event, finding): the input columns, the policy_* columns, check, severity."""
    with_findings = with_policy_findings(df, policy)
    return (
        with_findings.withColumn("_finding", F.explode("policy_findings"))
        .withColumns({"check": F.col("_finding.check"), "severity": F.col("_finding.severity")})
        .drop("_finding", "policy_findings")
    )


# what a finding keeps of its event (FINDING_COLUMNS but the mart keys)
_EVENT_FIELDS = tuple(c for c in FINDING_COLUMNS if c not in MART_KEYS)
_FIT_KEYS = ("cluster", "master", "_group", "_target", "policy_level", "level")


def summarise_policy_events(events_df: DataFrame, policy: Policy) -> DataFrame:
    """Both policy marts' input, in one pass over the events: ``_events`` per group.

    Requires the EVENTS columns. Groups are the policy-fit pattern (cluster, master, ``_group``
    = API group of a resource request, ``_target`` = resource[/subresource] or the URL path,
    policy_level, level), the event's ``rule`` and ``_event``: null for an event without
    findings, else the event's finding fields and ``findings`` (array<struct<check,
    severity>>). So the frame is as small as the week's patterns plus its events with
    findings; read it twice (``policy_findings_from``, ``policy_fit_from``) and cache it.
    """
    evaluated_df = with_policy_findings(events_df, policy)
    is_resource = F.coalesce(F.col("object_ref_present"), F.lit(False))
    target = F.when(
        is_resource,
        F.when(F.coalesce(F.col("subresource"), F.lit("")) == "", F.col("resource")).otherwise(
            F.concat_ws("/", F.col("resource"), F.col("subresource"))
        ),
    ).otherwise(F.substring_index(F.col("request_uri"), "?", 1))
    event = F.when(
        F.size("policy_findings") > 0,
        F.struct(*[F.col(c) for c in _EVENT_FIELDS], F.col("policy_findings").alias("findings")),
    )
    return evaluated_df.groupBy(
        "cluster", "master",
        F.when(is_resource, F.coalesce(F.col("api_group"), F.lit(""))).alias("_group"),
        target.alias("_target"), "policy_level", "level",
        # top level, not in _event: the mart's column keeps the type Spark infers for it
        F.col("policy_rule").alias("rule"), event.alias("_event"),
    ).agg(F.count(F.lit(1)).alias("_events"))  # fmt: skip


def policy_findings_from(
    policy_events_df: DataFrame, extra_findings_df: DataFrame | None = None
) -> DataFrame:
    """The ``policy_findings`` mart from ``summarise_policy_events``.

    One row per (cluster, master, rule, check, severity). ``events`` counts finding rows,
    ``requests`` distinct audit ids, ``example_events`` holds up to 5 structs ordered by
    request_received_ts, evidence_sha256, line_no.

    Extension point: findings that are not per-event (e.g. evidence gaps, which need other
    inputs than one event) come in as ``extra_findings_df`` with FINDING_COLUMNS and are
    counted and exemplified the same way.
    """
    findings_df = (
        policy_events_df.filter(F.col("_event").isNotNull())
        # an event that occurs n times (the same fields) counts n times
        .withColumn("_copy", F.explode(F.array_repeat(F.lit(1), F.col("_events").cast("int"))))
        .withColumn("_finding", F.explode("_event.findings"))
        .select(
            "cluster",
            "master",
            "rule",
            "_event.*",
            F.col("_finding.check").alias("check"),
            F.col("_finding.severity").alias("severity"),
        )
        .select(*FINDING_COLUMNS)
    )
    if extra_findings_df is not None:
        findings_df = findings_df.unionByName(extra_findings_df.select(*FINDING_COLUMNS))
    order = Window.partitionBy(*MART_KEYS).orderBy(
        F.col("request_received_ts").asc_nulls_last(),
        F.col("evidence_sha256").asc_nulls_last(),
        F.col("line_no").asc_nulls_last(),
    )
    # The examples: a rank filter right above the window, which Spark turns into a per-task
    # top-k before the shuffle (WindowGroupLimit). Ranking every finding instead sent them all
    # to their key's task: a scan's million findings of one check sorted in one task (17 s).
    examples_df = (
        findings_df.withColumn("_rank", F.row_number().over(order))
        .filter(F.col("_rank") <= EXAMPLES_PER_FINDING)
        .select(
            *MART_KEYS,
            F.lit(False).alias("_counted"),
            F.col("audit_id"),
            F.struct(F.col("_rank"), F.struct(*EXAMPLE_FIELDS).alias("event")).alias("_example"),
        )
    )
    counted_df = findings_df.select(
        *MART_KEYS,
        F.lit(True).alias("_counted"),
        F.col("audit_id"),
        F.lit(None).cast(examples_df.schema["_example"].dataType).alias("_example"),
    )
    # one aggregation over both (no join: a null key groups as itself)
    counted = F.col("_counted")
    return (
        counted_df.unionByName(examples_df)
        .groupBy(*MART_KEYS)
        .agg(
            F.count(F.when(counted, F.lit(1))).alias("events"),
            F.count_distinct(F.when(counted, F.col("audit_id"))).alias("requests"),
            F.sort_array(F.collect_list("_example")).alias("_examples"),
        )
        .withColumn("example_events", F.transform("_examples", lambda x: x["event"]))
        .select(*POLICY_FINDINGS_COLUMNS)
    )


def policy_fit_from(policy_events_df: DataFrame) -> DataFrame:
    """The ``policy_fit`` mart from ``summarise_policy_events``: per master, events at level.

    ``events_matching_level`` counts the events that carry the level the policy gives them. A
    master whose ``share`` stands out, with consistent ``top_mismatches`` (api_group,
    resource, expected_level, logged_level, events; resource is "resource[/subresource]", or
    the URL path for non-resource requests), appears to run another policy (spec §7 C1/C2
    false positives: drift, HA replicas, mixed servers).
    """
    patterns_df = (
        policy_events_df.groupBy(*_FIT_KEYS)
        # never null (a group has rows); coalesce says so to Spark, as count did
        .agg(F.coalesce(F.sum("_events"), F.lit(0)).alias("_events"))
        .withColumn("_matches", F.col("level").eqNullSafe(F.col("policy_level")))
    )
    mismatch = F.struct(
        (-F.col("_events")).alias("_order"),
        F.col("_group").alias("api_group"),
        F.col("_target").alias("resource"),
        F.col("policy_level").alias("expected_level"),
        F.col("level").alias("logged_level"),
        F.col("_events").alias("events"),
    )
    return (
        patterns_df.groupBy("cluster", "master")
        .agg(
            F.sum("_events").alias("events"),
            F.sum(F.when(F.col("_matches"), F.col("_events")).otherwise(F.lit(0))).alias(
                "events_matching_level"
            ),
            F.sort_array(F.collect_list(F.when(~F.col("_matches"), mismatch))).alias("_mismatches"),
        )
        .withColumns(
            {
                "share": F.col("events_matching_level") / F.col("events"),
                "top_mismatches": F.transform(
                    F.slice("_mismatches", 1, TOP_MISMATCHES), lambda m: m.dropFields("_order")
                ),
            }
        )
        .select(*POLICY_FIT_COLUMNS)
    )


def summarise_policy_findings(
    events_df: DataFrame, policy: Policy, extra_findings_df: DataFrame | None = None
) -> DataFrame:
    """The ``policy_findings`` mart of ``events_df`` (EVENTS columns): see policy_findings_from."""
    return policy_findings_from(summarise_policy_events(events_df, policy), extra_findings_df)


def summarise_policy_fit(events_df: DataFrame, policy: Policy) -> DataFrame:
    """The ``policy_fit`` mart of ``events_df`` (EVENTS columns): see policy_fit_from."""
    return policy_fit_from(summarise_policy_events(events_df, policy))
