import json

from expectations.events import file_ranges_from_ledger
from expectations.weekly import validate_ingest_batch, validate_week
from tests.expectations.week import events_df, ledger_entries, marts

SUITES = {
    "events_suite",
    "overview_suite",
    "detections_suite",
    "important_events_suite",
    "resource_operations_suite",
    "resource_detail_suite",
    "resource_detail_operations_suite",
    "source_ips_suite",
    "users_suite",
    "impersonation_suite",
    "crd_operations_suite",
    "policy_findings_suite",
    "policy_fit_suite",
    "ledger_suite",
    "consistency_suite",
}


def test_validate_week_on_a_consistent_week(spark, tmp_path):
    result = validate_week(spark, events_df(spark), marts(spark), ledger_entries(), tmp_path)
    written = json.loads((tmp_path / "validation.json").read_text())
    assert written == result
    assert set(written) == {"success", "suites"}
    assert {s["suite"] for s in written["suites"]} == SUITES
    for suite in written["suites"]:
        assert set(suite) == {"suite", "success", "results"}
        assert suite["success"] is True, suite
        for r in suite["results"]:
            assert set(r) == {"expectation", "column", "observed", "success", "severity"}
            assert r["success"] is True, (suite["suite"], r)
            assert r["severity"] in ("critical", "warning")
            assert r["column"] is None or isinstance(r["column"], str)
    assert written["success"] is True
    assert (tmp_path / "data_docs" / "index.html").is_file()


def test_validate_ingest_batch(spark):
    ranges = file_ranges_from_ledger(spark, ledger_entries())
    result = validate_ingest_batch(spark, events_df(spark), ranges)
    assert result["success"] is True
    assert [s["suite"] for s in result["suites"]] == ["events_suite"]
