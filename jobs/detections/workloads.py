"""One finding per workload: pods, and what controllers make, linked to the written template.

What the lake shows (docs/audit-policy-semantics.md §2; corpus falco and openshift-clo pod
creates): a pod created by a controller has no ``objectRef.name`` (it uses ``generateName``),
its request body carries ``metadata.ownerReferences`` (the ReplicaSet, Job, DaemonSet or
StatefulSet that made it) and its response body the generated name. A ReplicaSet made by the
deployment controller names its Deployment the same way, a Job made by the cronjob controller
its CronJob.

A row's workload is its controlling owner (``controller: true``, else the first owner), else
itself; then one step up when the week's own writes show that owner's owner, or, failing that,
when a Deployment (CronJob) named like the ReplicaSet (Job) without its hash (schedule)
suffix was written in the same namespace this week. ``finding_key`` is
``workload:<namespace>/<Kind>/<name>``; ``written_by`` the latest person (not a controller or
node) among the finding's rows, i.e. who wrote the template.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.detections.predicates import WORKLOADS, body_writes, non_system, ok, workload

KINDS: dict[str, str] = {
    "pods": "Pod",
    "replicationcontrollers": "ReplicationController",
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet",
    "replicasets": "ReplicaSet",
    "jobs": "Job",
    "cronjobs": "CronJob",
}
assert set(KINDS) == {r for _, r in WORKLOADS}
WORKLOAD_PREFIX = "workload:"
# pod-template-hash suffix of a Deployment's ReplicaSets; scheduled-time suffix of CronJob Jobs.
_PARENT_BY_SUFFIX = (
    ("ReplicaSet", "Deployment", r"^(.+)-[a-z0-9]{1,10}$"),
    ("Job", "CronJob", r"^(.+)-[0-9]+$"),
)
_OWNERS = "array<struct<kind:string,name:string,controller:boolean>>"


def kind_col() -> Column:
    """The Kind of the request's object, for the workload resources."""
    expr = F.lit(None).cast("string")
    for resource, kind in KINDS.items():
        expr = F.when(F.col("resource") == resource, F.lit(kind)).otherwise(expr)
    return expr


def object_name_col() -> Column:
    """objectRef.name, else the body's name, else the generated name of the response."""
    return F.coalesce(
        F.nullif(F.col("object_name"), F.lit("")),
        F.get_json_object("request_object", "$.metadata.name"),
        F.col("response_name"),
    )


def owner_col() -> Column:
    """struct(kind, name) of the body's controlling owner reference (null if none)."""
    refs = F.from_json(F.get_json_object("request_object", "$.metadata.ownerReferences"), _OWNERS)
    chosen = F.coalesce(
        F.get(F.filter(refs, lambda r: F.coalesce(r["controller"], F.lit(False))), 0),
        F.get(refs, 0),
    )
    return F.when(
        chosen["name"].isNotNull(),
        F.struct(chosen["kind"].alias("kind"), chosen["name"].alias("name")),
    )


def workload_write_scope() -> Column:
    """The requests workload_objects reads: successful writes of a workload with a body."""
    return workload() & body_writes() & ok()


def workload_objects(req_df: DataFrame) -> DataFrame:
    """(_ns, _kind, _name, _parent) of every workload written this week (small: broadcast)."""
    return (
        req_df.filter(workload_write_scope())
        .select(
            F.coalesce(F.col("namespace"), F.lit("")).alias("_ns"),
            kind_col().alias("_kind"),
            object_name_col().alias("_name"),
            owner_col().alias("_owner"),
        )
        .filter(F.col("_name").isNotNull())
        .groupBy("_ns", "_kind", "_name")
        .agg(F.max("_owner").alias("_parent"))
    )


def with_workload_key(hits_df: DataFrame, objects_df: DataFrame) -> DataFrame:
    """Add ``workload`` (``ns/Kind/name``), ``finding_key`` and ``written_by`` to workload hits."""
    ns = F.coalesce(F.col("namespace"), F.lit(""))
    self_ref = F.struct(kind_col().alias("kind"), object_name_col().alias("name"))
    direct_df = hits_df.withColumns({"_ns_h": ns, "_direct": F.coalesce(owner_col(), self_ref)})
    # one broadcast table for both lookups (the plan reuses it; it was built twice)
    objects = F.broadcast(
        objects_df.select(
            F.col("_ns").alias("_o_ns"), F.col("_kind").alias("_o_kind"),
            F.col("_name").alias("_o_name"), F.col("_parent").alias("_o_parent"),
        )
    )  # fmt: skip

    def same_object(ref: Column) -> Column:
        return (
            (F.col("_ns_h") == F.col("_o_ns"))
            & (ref["kind"] == F.col("_o_kind"))
            & (ref["name"] == F.col("_o_name"))
        )

    up_df = (
        direct_df.join(objects, same_object(F.col("_direct")), how="left")
        .withColumnRenamed("_o_parent", "_up")
        .drop("_o_ns", "_o_kind", "_o_name")
    )
    guess = F.lit(None).cast("struct<kind:string,name:string>")
    for child, parent, pattern in _PARENT_BY_SUFFIX:
        cand = F.nullif(F.regexp_extract(F.col("_direct")["name"], pattern, 1), F.lit(""))
        guess = F.when(
            F.col("_direct")["kind"] == child,
            F.struct(F.lit(parent).alias("kind"), cand.alias("name")),
        ).otherwise(guess)
    guessed_df = up_df.withColumn("_guess", guess)
    joined_df = (
        guessed_df.join(objects, same_object(F.col("_guess")), how="left")
        .withColumn("_guess_known", F.col("_o_name").isNotNull())
        .drop("_o_ns", "_o_kind", "_o_name", "_o_parent")
    )
    top = F.coalesce(F.col("_up"), F.when(F.col("_guess_known"), F.col("_guess")), F.col("_direct"))
    name = F.concat_ws("/", F.col("_ns_h"), top["kind"], F.coalesce(top["name"], F.lit("?")))
    keyed_df = joined_df.withColumn("workload", name).withColumn(
        "finding_key", F.concat(F.lit(WORKLOAD_PREFIX), F.col("workload"))
    )
    person = F.when(non_system(), F.struct("request_received_ts", "attributed_user"))
    by_key = Window.partitionBy("finding_key")
    return keyed_df.withColumn("written_by", F.max(person).over(by_key)["attributed_user"]).drop(
        "_ns_h", "_direct", "_up", "_guess", "_guess_known"
    )


def pod_name_col() -> Column:
    """The pod a pod creation made (its generated name when objectRef has none)."""
    return F.when(F.col("resource") == "pods", object_name_col())
