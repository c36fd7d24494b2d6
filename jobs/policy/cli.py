"""``kaudit policy``: validate a policy file; show which rule and level each logged event gets.

``match`` runs the very Column expressions of the weekly job (``with_policy_evaluation``) on
the given lines, so its answer is the job's answer. Spark is imported only when needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from jobs.policy.loader import load_default_policy, load_policy
from jobs.policy.model import GroupResources, Policy, PolicyError, PolicyRule

EXIT_BAD_POLICY = 2
STDIN = "-"
CLI_CLUSTER = "cli"  # ingest deduplicates per cluster; all inputs of one call form one
BUCKET_BLANK, BUCKET_QUARANTINED = "blank", "quarantined"
_RESULT_COLUMNS = (
    "file_order", "line_no", "bucket", "reason", "detail", "audit_id", "stage", "policy_rule",
    "policy_level",
)  # fmt: skip
_POLICY_OPTION = click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Audit Policy YAML file (default: the embedded ACK policy).",
)


def _load(policy_file: Path | None) -> Policy:
    try:
        return load_default_policy() if policy_file is None else load_policy(policy_file)
    except PolicyError as exc:
        click.echo(f"error: {exc}", err=True)
        raise click.exceptions.Exit(EXIT_BAD_POLICY) from exc


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


@click.group("policy")
def policy() -> None:
    """Audit policy: validate a policy file, match events against it."""


@policy.command("check")
@_POLICY_OPTION
def check_command(policy_file: Path | None) -> None:
    """Validate a policy file and print its rules (exit code 2 when invalid)."""
    loaded = _load(policy_file)
    click.echo(
        f"{loaded.source}: OK, {loaded.api_version}, {len(loaded.rules)} rules, "
        f"omitStages=[{', '.join(loaded.omit_stages)}], "
        f"omitManagedFields={str(loaded.omit_managed_fields).lower()}, sha256={loaded.sha256}"
    )
    for index, rule in enumerate(loaded.rules):
        line = f"line {rule.line}" if rule.line is not None else ""
        click.echo(f"{index:>3}  {rule.level:<15}  {line:<9}  {describe_rule(rule)}")


def _read_lines(sources: tuple[str, ...]) -> list[tuple[int, int, bytes]]:
    rows: list[tuple[int, int, bytes]] = []
    for input_no, source in enumerate(sources):
        with click.open_file(source, "rb") as stream:  # "-" is stdin
            data = stream.read()
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()  # the newline that ends the last line does not start another one
        rows.extend((input_no, line_no, raw) for line_no, raw in enumerate(lines, start=1))
    return rows


def _line_error(bucket: str, reason: str | None, detail: str | None) -> str | None:
    if bucket == BUCKET_BLANK:
        return "blank line"
    if bucket == BUCKET_QUARANTINED:
        return f"{reason}: {detail}" if detail else str(reason)
    return None


def match_lines(rows: list[tuple[int, int, bytes]], loaded: Policy) -> list[dict[str, Any]]:
    """Evaluate (input, line, bytes) rows as ingest + the weekly job would; in input order.

    Lines go through ingest's own classification and normalization (``classify_lines``), then
    ``with_policy_evaluation``: the same Columns as the weekly job.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import BinaryType, IntegerType, LongType, StructField, StructType

    from jobs._session import get_spark
    from jobs.ingest.transforms import classify_lines
    from jobs.policy.compile import with_policy_evaluation
    from jobs.settings import DEFAULT_MAX_LINE_BYTES

    schema = StructType(
        [
            StructField("file_order", IntegerType(), False),
            StructField("line_no", LongType(), False),
            StructField("raw_line", BinaryType(), False),
        ]
    )
    # Binary in, cast to string in Spark: like the text source, bytes are not validated here,
    # so ingest's own UTF-8 check still sees them.
    lines_df = (
        get_spark("kaudit-policy")
        .createDataFrame(rows, schema)
        .select(
            F.col("raw_line").cast("string").alias("value"),
            "file_order",
            "line_no",
            F.lit(CLI_CLUSTER).alias("cluster"),
            F.lit(None).cast("string").alias("master"),
            F.lit(None).cast("string").alias("evidence_sha256"),
        )
    )
    result_df = with_policy_evaluation(
        classify_lines(lines_df, DEFAULT_MAX_LINE_BYTES), loaded
    ).select(*_RESULT_COLUMNS)
    results = []
    for row in sorted(result_df.collect(), key=lambda r: (r["file_order"], r["line_no"])):
        out: dict[str, Any] = {"input_no": row["file_order"], "line": row["line_no"]}
        error = _line_error(row["bucket"], row["reason"], row["detail"])
        if error is not None:
            out["error"] = error
        else:
            out.update(
                audit_id=row["audit_id"],
                stage=row["stage"],
                rule=row["policy_rule"],
                level=row["policy_level"],
            )
        results.append(out)
    return results


@policy.command("match")
@_POLICY_OPTION
@click.argument("events", nargs=-1, type=click.Path(dir_okay=False, allow_dash=True))
def match_command(policy_file: Path | None, events: tuple[str, ...]) -> None:
    """Print the matching rule and level for every line of EVENTS (JSON lines; stdin if none).

    One JSON object per input line, in input order: {"line", "audit_id", "stage", "rule",
    "level"}, or {"line", "error"} for a line that is not an audit event. With several
    inputs each object also names its "file"; lines are counted from 1 in each input.
    """
    loaded = _load(policy_file)
    sources = events or (STDIN,)
    rows = _read_lines(sources)
    if not rows:
        return
    for result in match_lines(rows, loaded):
        input_no = result.pop("input_no")
        if len(sources) > 1:
            result = {"file": sources[input_no], **result}
        click.echo(json.dumps(result))
