from expectations.consistency import build_consistency_suite, consistency_frame
from expectations.ledger import build_ledger_suite, ledger_frame
from tests.expectations.conftest import failed
from tests.expectations.week import SHA, events_df, ledger_entries, mart_rows, marts

MAX_BETWEEN = "expect_column_max_to_be_between"
MIN_BETWEEN = "expect_column_min_to_be_between"
BETWEEN = "expect_column_values_to_be_between"


def _ledger(spark, runner, **change):
    entries = ledger_entries()
    entries[0].update(change)
    return runner.validate(ledger_frame(spark, entries), build_ledger_suite())


def test_ledger_passes_when_every_line_is_accounted_for(spark, runner):
    out = _ledger(spark, runner)
    assert out.suite == "ledger_suite" and out.success and out.failures() == []


def test_ledger_fails_when_lines_do_not_add_up(spark, runner):
    out = _ledger(spark, runner, lines=4)
    assert not out.success
    assert failed(out) == {(BETWEEN, "unaccounted_lines")}


def test_quarantined_share_above_threshold_is_a_warning(spark, runner):
    out = _ledger(spark, runner, lines=6, quarantined=3)  # 3 of 6 lines quarantined
    assert out.success
    assert failed(out) == {(BETWEEN, "quarantined_share")}
    assert out.failures()[0].severity == "warning"


def _consistency(spark, runner, **replace):
    frame = consistency_frame(events_df(spark), marts(spark, **replace))
    assert len(frame) == 1  # one row (a pandas frame)
    return runner.validate(frame, build_consistency_suite())


def test_consistent_week_passes_cross_checks(spark, runner):
    out = _consistency(spark, runner)
    assert out.success and out.failures() == []
    observed = {r.column: r.observed for r in out.results}
    assert observed["public_ip_country_rate"] == 1.0
    assert observed["overview_verb_requests_minus_total"] == 0


def test_requests_by_verb_not_adding_up_fails(spark, runner):
    overview = [
        ("verb", "get", 3, 3, 1, 1, 1) if r[:2] == ("verb", "get") else r
        for r in mart_rows()["overview"]
    ]
    out = _consistency(spark, runner, overview=overview)
    assert failed(out) == {(MAX_BETWEEN, "overview_verb_requests_minus_total")}
    assert out.failures()[0].observed == 1


def test_detection_pointing_outside_the_lake_fails(spark, runner):
    row = list(mart_rows()["important_events"][0])
    assert row[23] == SHA
    row[24] = 99  # line_no: no such event
    out = _consistency(spark, runner, important_events=[tuple(row)])
    assert failed(out) == {(MAX_BETWEEN, "important_events_missing_in_lake")}


def test_unresolved_public_ips_fail_the_geo_rate(spark, runner):
    ips = [
        tuple(None if i == 13 else v for i, v in enumerate(r)) for r in mart_rows()["source_ips"]
    ]
    out = _consistency(spark, runner, source_ips=ips)
    assert failed(out) == {(MIN_BETWEEN, "public_ip_country_rate")}
    assert out.failures()[0].observed == 0.0


def test_resource_operations_not_adding_up_to_their_type_fails(spark, runner):
    ops = [
        r if r[3] != "create" else (*r[:4], 2, 2, 1.0) for r in mart_rows()["resource_operations"]
    ]
    out = _consistency(spark, runner, resource_operations=ops)
    assert failed(out) == {(MAX_BETWEEN, "resource_operation_mismatches")}


def test_per_ip_requests_not_adding_up_fails(spark, runner):
    ips = [(*r[:1], 5, *r[2:]) if r[0] == "10.0.0.1" else r for r in mart_rows()["source_ips"]]
    out = _consistency(spark, runner, source_ips=ips)
    assert failed(out) == {(MAX_BETWEEN, "source_ip_requests_minus_lake")}
