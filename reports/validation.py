"""validation.json -> what the report shows of it (pure: dicts in, dicts and bytes out).

The PDF shows one line per suite and only the expectations that failed or warned, each with
its observed value in words; the full result list goes into the attached ``validation.csv``.
"""

from __future__ import annotations

from typing import Any

from reports import csvs
from reports.i18n import Messages

CSV_FILE = "validation.csv"
CSV_COLUMNS = (
    "suite",
    "expectation",
    "column",
    "severity",
    "success",
    "unexpected_count",
    "element_count",
    "observed",
)
COVER_CAP = 8  # failing expectations listed on the cover; the rest are in section 10
EXAMPLES_CHARS = 120  # examples are event text: enough to recognise, never a whole column
_CRITICAL = "critical"
_WARNING = "warning"


def status(validation: dict[str, Any] | None) -> str:
    """``none`` (no result supplied), ``passed`` or ``failed``."""
    if validation is None:
        return "none"
    return "passed" if validation.get("success") else "failed"


def results(validation: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every expectation's result with its suite name, in file order."""
    return [
        {"suite": s.get("suite"), **r}
        for s in (validation or {}).get("suites") or []
        for r in s.get("results") or []
    ]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _row_counts(observed: Any) -> tuple[int, int] | None:
    """(unexpected, rows) when ``observed`` is GX's per-row count, else None."""
    if not isinstance(observed, dict):
        return None
    unexpected, rows = observed.get("unexpected_count"), observed.get("element_count")
    if isinstance(unexpected, int | float) and isinstance(rows, int | float):
        return int(unexpected), int(rows)
    return None


def _plain(value: Any, t: Messages) -> str:
    if value is None:
        return t("n_a")
    if _is_number(value):
        return t.num(value)
    if isinstance(value, bool):
        return t("yes") if value else t("no")
    if isinstance(value, list):
        return ", ".join(_plain(v, t) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_plain(v, t)}" for k, v in sorted(value.items()))
    return str(value)


def observed_text(observed: Any, t: Messages) -> str:
    """What an expectation saw, in words: "3 of 59,998 rows unexpected (e.g. a, b)"."""
    counts = _row_counts(observed)
    if counts is None:
        return _plain(observed, t)
    text = t("s10.rows_unexpected", n=t.num(counts[0]), total=t.num(counts[1]))
    examples = [e for e in observed.get("examples") or [] if e is not None]
    if examples:
        shown = _plain(examples, t)
        if len(shown) > EXAMPLES_CHARS:
            shown = shown[: EXAMPLES_CHARS - 1] + "…"
        text += " " + t("s10.examples", values=shown)
    return text


def view(validation: dict[str, Any] | None, t: Messages) -> dict[str, Any]:
    """Section 10 and the cover's validation lines.

    ``suites``: per suite, expectations / passed / failed critical / warnings; ``issues``: the
    failed and warning expectations with a readable observed value; ``failed``: the critical
    failures (the cover lists the first ``COVER_CAP`` of them).
    """
    rows = results(validation)
    suites: dict[str, dict[str, Any]] = {}
    issues = []
    for r in rows:
        suite = suites.setdefault(
            str(r["suite"]),
            {"suite": r["suite"], "total": 0, "passed": 0, "failed": 0, "warnings": 0},
        )
        suite["total"] += 1
        if r.get("success"):
            suite["passed"] += 1
            continue
        critical = r.get("severity") != _WARNING
        suite["failed" if critical else "warnings"] += 1
        issues.append(
            {
                "suite": r["suite"],
                "expectation": r.get("expectation"),
                "column": r.get("column"),
                "critical": critical,
                "severity_label": t(f"sev.{_CRITICAL if critical else _WARNING}"),
                "observed": observed_text(r.get("observed"), t),
            }
        )
    issues.sort(key=lambda i: not i["critical"])  # failures before warnings, else file order
    failed = [i for i in issues if i["critical"]]
    return {
        "status": status(validation),
        "suites": list(suites.values()),
        "issues": issues,
        "failed": failed[:COVER_CAP],
        "failed_more": max(len(failed) - COVER_CAP, 0),
        "passed": sum(s["passed"] for s in suites.values()),
        "total": len(rows),
        "file": CSV_FILE,
    }


def to_csv(validation: dict[str, Any] | None) -> bytes:
    """Every result as a CSV row; counts and numeric observed values stay numbers."""
    out = []
    for r in results(validation):
        observed = r.get("observed")
        counts = _row_counts(observed)
        out.append(
            {
                **{k: r.get(k) for k in ("suite", "expectation", "column", "severity")},
                "success": bool(r.get("success")),
                "unexpected_count": counts[0] if counts else None,
                "element_count": counts[1] if counts else None,
                "observed": observed,  # numbers stay numbers; dicts become JSON
            }
        )
    return csvs.to_csv(out, CSV_COLUMNS)
