from __future__ import annotations

import json

import pytest

from jobs import pipeline
from jobs.errors import EXIT_FINDINGS

pytestmark = pytest.mark.spark
WEEK = "2026-W47"


def test_weekly_report_writes_marts_validation_and_a_verifiable_pdf(spark, copy_home):
    from reports.verify import verify_report

    config, layout = copy_home
    lines: list[str] = []
    released: list[list[str]] = []  # the step lines printed when the JVM may be ended
    outcome = pipeline.weekly_report(
        spark, config, layout, WEEK, echo=lines.append,
        release_spark=lambda: released.append(list(lines)),
    )  # fmt: skip
    assert outcome.validation["success"], [
        r for s in outcome.validation["suites"] for r in s["results"] if not r["success"]
    ]
    assert outcome.pdf == layout.reports("demo", WEEK) / "report.pdf"
    assert verify_report(outcome.pdf, layout.home) == []
    manifest = json.loads((outcome.pdf.parent / "manifest.json").read_text())
    assert manifest["custody_head"]["count"] == len(layout.custody.read_text().splitlines())
    assert [line.split()[0] for line in lines] == ["...", "done"] * 4
    assert released == [lines[:4]]  # once: after validation, before the PDF
    assert "validation" in lines[3] and "PDF" in lines[4]
    summary = outcome.summary
    provenance = summary["provenance"]
    assert provenance["policy"]["source"] == "embedded ACK policy"
    assert len(provenance["policy"]["sha256"]) == 64
    assert {f["sha256"] for f in provenance["evidence_files"]} <= {
        json.loads(r)["sha256"]
        for r in layout.custody.read_text().splitlines()
        if json.loads(r)["record_type"] == "collected"
    }
    assert summary["coverage"]["events"] == summary["events_total"]
    assert {m["master"] for m in summary["coverage"]["masters"]} == {
        "master-1",
        "master-2",
        "master-3",
    }


def test_empty_week_is_refused_unless_allowed_and_never_looks_clean(spark, copy_home):
    config, layout = copy_home
    with pytest.raises(pipeline.EmptyWeekError) as err:
        pipeline.build(spark, config, layout, "2026-W49")
    assert err.value.exit_code == EXIT_FINDINGS
    assert "--allow-empty" in str(err.value)
    summary = pipeline.build(spark, config, layout, "2026-W49", allow_empty=True)
    coverage = summary["coverage"]
    assert coverage["events"] == 0 and coverage["complete"] is False
    assert {(g["master"], g["hours"], g["cause"]) for g in coverage["gaps"]} == {
        (m, 168, "master never collected") for m in ("master-1", "master-2", "master-3")
    }


def test_config_hash_ignores_the_file_but_not_the_settings(tmp_path):
    from jobs.settings import load_config

    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("cluster: c\nmasters: [{name: m, source: 'file:///x'}]\n")
    b.write_text("# same settings\ncluster:   c\nmasters:\n  - {source: 'file:///x', name: m}\n")
    assert pipeline.config_sha256(load_config(a)) == pipeline.config_sha256(load_config(b))
    b.write_text("cluster: c\ntimezone: Asia/Shanghai\nmasters: [{name: m, source: 'file:///x'}]\n")
    assert pipeline.config_sha256(load_config(a)) != pipeline.config_sha256(load_config(b))


def test_source_date_epoch_fixes_generated_at(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1795000000")
    assert pipeline.generated_at().isoformat() == "2026-11-18T11:06:40+00:00"
