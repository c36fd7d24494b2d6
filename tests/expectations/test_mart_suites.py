import datetime as dt

import pytest

from expectations.marts import MART_SUITES
from jobs.lake.marts import read_small_mart, write_mart
from jobs.weekly.main import MART_ORDER
from tests.expectations.conftest import failed
from tests.expectations.week import mart_df, mart_rows

NOT_NULL = "expect_column_values_to_not_be_null"
IN_SET = "expect_column_values_to_be_in_set"
BETWEEN = "expect_column_values_to_be_between"
UNIQUE = "expect_column_values_to_be_unique"
COMPOUND_UNIQUE = "expect_compound_columns_to_be_unique"
A_GE_B = "expect_column_pair_values_a_to_be_greater_than_b"


def _set(row, index, value):
    row = list(row)
    row[index] = value
    return tuple(row)


def _first(name, index, value):
    rows = mart_rows()[name]
    return [_set(rows[0], index, value), *rows[1:]]


LATE = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
EARLY = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)
CRD_ROW = ("cert-manager.io", "certificates", "get", "alice", 3, 0, EARLY, LATE)
FINDING_ROW = ("demo", "master-1", 10, "C12_BODY_EXPECTED_MISSING", "info", 2, 2, [])
IMPERSONATION_ROW = (
    "admin",
    "admin",
    "system:serviceaccount:prod:deployer",
    [],
    3,
    0,
    0,
    0,
    EARLY,
    LATE,
)

# mart -> (its rows broken in exactly one way, the one expectation that must fail)
BROKEN = {
    "overview": (
        mart_rows()["overview"] + [mart_rows()["overview"][0]],
        (COMPOUND_UNIQUE, "dimension, key"),
    ),
    "detections": (_first("detections", 1, "urgent"), (IN_SET, "severity")),
    "important_events": (_first("important_events", 23, None), (NOT_NULL, "evidence_sha256")),
    "resource_operations": (_first("resource_operations", 6, 1.5), (BETWEEN, "success_rate")),
    "resource_detail": (_first("resource_detail", 3, "week"), (IN_SET, "facet")),
    "resource_detail_operations": (
        _first("resource_detail_operations", 13, 99),
        (BETWEEN, "response_code"),
    ),
    "source_ips": (_first("source_ips", 2, 5), (A_GE_B, "requests, failures")),
    "users": (_first("users", 6, -1), (BETWEEN, "forbidden")),
    "impersonation": ([_set(IMPERSONATION_ROW, 2, None)], (NOT_NULL, "impersonated_user")),
    "crd_operations": ([_set(_set(CRD_ROW, 6, LATE), 7, EARLY)], (A_GE_B, "last_seen, first_seen")),
    "policy_findings": ([_set(FINDING_ROW, 6, 3)], (A_GE_B, "events, requests")),
    "policy_fit": (_first("policy_fit", 4, 1.2), (BETWEEN, "share")),
}
# marts whose week rows are empty get one good row here, so that "passes" means something
GOOD_EXTRA = {
    "impersonation": [IMPERSONATION_ROW],
    "crd_operations": [CRD_ROW],
    "policy_findings": [FINDING_ROW],
}


def test_every_mart_has_a_suite_and_a_breakage():
    assert set(BROKEN) == set(MART_SUITES) == set(mart_rows())
    for name, build in MART_SUITES.items():
        assert build().name == f"{name}_suite"


@pytest.mark.parametrize("name", sorted(GOOD_EXTRA))
def test_nonempty_good_rows_pass(spark, runner, name):
    out = runner.validate(mart_df(spark, name, GOOD_EXTRA[name]), MART_SUITES[name]())
    assert out.success and out.failures() == []


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_mart_fails_its_expectation(spark, runner, name):
    rows, expected = BROKEN[name]
    out = runner.validate(mart_df(spark, name, rows), MART_SUITES[name]())
    assert not out.success
    assert failed(out) == {expected}
    bad = out.failures()[0]
    assert bad.severity == "critical" and bad.observed["unexpected_count"] >= 1


def test_missing_column_is_reported_not_raised(spark, runner):
    df = mart_df(spark, "policy_fit").drop("share")
    out = runner.validate(df, MART_SUITES["policy_fit"]())
    assert not out.success
    bad = {r.column: r for r in out.failures()}
    assert set(bad) == {"share"}
    assert "share" in bad["share"].observed["error"]


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_pandas_engine_gives_the_spark_outcome(spark, runner, tmp_path, name):
    """The weekly validation runs small marts on GX's pandas engine, read back from Parquet
    as the pipeline reads them: same results, observed values and examples as Spark's."""
    rows, expected = BROKEN[name]
    write_mart(mart_df(spark, name, rows), tmp_path / name, MART_ORDER[name])
    local = read_small_mart(tmp_path, name, max_rows=1_000)
    assert local is not None and len(local) == len(rows)
    on_spark = runner.validate(spark.read.parquet(str(tmp_path / name)), MART_SUITES[name]())
    on_pandas = runner.validate(local, MART_SUITES[name]())
    assert failed(on_pandas) == {expected}
    assert on_pandas.to_dict() == on_spark.to_dict()


def test_a_large_mart_is_not_read_into_pandas(spark, tmp_path):
    write_mart(mart_df(spark, "overview"), tmp_path / "overview", MART_ORDER["overview"])
    rows = len(mart_rows()["overview"])
    assert read_small_mart(tmp_path, "overview", max_rows=rows - 1) is None
    assert len(read_small_mart(tmp_path, "overview", max_rows=rows)) == rows
