import datetime as dt
import json

import pytest

from expectations.events import (
    FILE_RANGES_SCHEMA,
    IN_FUTURE,
    OUTSIDE_FILE_RANGE,
    REPEATED_LINE,
    REPEATED_STAGE,
    UNIQUE_KEYS,
    _hash_repeats,
    build_events_suite,
    file_ranges_from_ledger,
    prepare_events,
    with_key_checks,
)
from tests.expectations.conftest import failed
from tests.expectations.week import SHA, T0, event, events_df, ledger_entries

NOT_NULL = "expect_column_values_to_not_be_null"
IN_SET = "expect_column_values_to_be_in_set"
BETWEEN = "expect_column_values_to_be_between"
IS_NULL = "expect_column_values_to_be_null"


def _validate(spark, runner, rows, ranges=None):
    """As the weekly job validates its events (prepared, cached while GX reads them)."""
    from expectations.weekly import _validate_events

    ranges_df = ranges if ranges is not None else file_ranges_from_ledger(spark, ledger_entries())
    return _validate_events(runner, events_df(spark, rows), ranges_df)


def _good():
    return [
        event("a1", 1, 0),
        event("a2", 2, 1, verb="create", response_code=201),
        event("a3", 3, 2, stage="RequestReceived", response_code=None),
    ]


def test_good_events_pass(spark, runner):
    out = _validate(spark, runner, _good())
    assert out.suite == "events_suite"
    assert out.success and out.failures() == []
    assert len(out.results) == len(build_events_suite().expectations)
    json.dumps([r.to_dict() for r in out.results])  # observed values are JSON-safe


BROKEN = {
    "audit_id null": (lambda r: r[0].update(audit_id=None), (NOT_NULL, "audit_id")),
    "stage null": (lambda r: r[0].update(stage=None), (NOT_NULL, "stage")),
    "stage unknown": (lambda r: r[0].update(stage="Finished"), (IN_SET, "stage")),
    "level unknown": (lambda r: r[0].update(level="Verbose"), (IN_SET, "level")),
    "code out of range": (lambda r: r[0].update(response_code=700), (BETWEEN, "response_code")),
    "code missing on ResponseComplete": (
        lambda r: r[0].update(response_code=None),
        (NOT_NULL, "response_code"),
    ),
    "line null": (lambda r: r[0].update(line_no=None), (NOT_NULL, "line_no")),
    "duplicate audit_id/stage": (
        lambda r: r[1].update(audit_id="a1", verb="get"),
        (IS_NULL, REPEATED_STAGE),
    ),
    "duplicate evidence line": (
        lambda r: r[1].update(line_no=1),
        (IS_NULL, REPEATED_LINE),
    ),
    "outside file range": (
        lambda r: r[1].update(request_received_ts=T0 + dt.timedelta(hours=5)),
        (IS_NULL, OUTSIDE_FILE_RANGE),
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_breakage_fails_its_expectation(spark, runner, case):
    rows = _good()
    breaks, expected = BROKEN[case]
    breaks(rows)
    out = _validate(spark, runner, rows)
    assert not out.success
    assert failed(out) == {expected}


def test_null_sha_fails_not_null_and_the_file_range(spark, runner):
    # a null pointer cannot be placed in any file's range either
    rows = _good()
    rows[0]["evidence_sha256"] = None
    out = _validate(spark, runner, rows)
    assert failed(out) == {(NOT_NULL, "evidence_sha256"), (IS_NULL, OUTSIDE_FILE_RANGE)}


def test_event_of_a_file_the_ledger_does_not_know_fails_the_range(spark, runner):
    rows = _good()
    rows[0]["evidence_sha256"] = "b" * 64
    out = _validate(spark, runner, rows)
    assert failed(out) == {(IS_NULL, OUTSIDE_FILE_RANGE)}
    bad = next(r for r in out.results if r.column == OUTSIDE_FILE_RANGE)
    assert "file not in the ledger" in bad.observed["examples"][0]


def test_a_repeated_key_names_each_line_and_how_often(spark, runner):
    rows = [*_good(), event("a1", 4, 0, verb="get"), event("a1", 5, 0, verb="get")]
    out = _validate(spark, runner, rows)
    assert failed(out) == {(IS_NULL, REPEATED_STAGE)}
    bad = next(r for r in out.results if r.column == REPEATED_STAGE)
    assert bad.observed["unexpected_count"] == 3
    examples = sorted(bad.observed["examples"])
    assert examples[0].endswith(":1 audit_id a1, stage ResponseComplete occurs 3 times")
    assert [e.split(" ")[0][-2:] for e in examples] == [":1", ":4", ":5"]


def test_rows_without_any_key_value_are_not_repeats(spark, runner):
    # as GX's compound uniqueness: rows whose key columns are all null are left out (they
    # fail not-null instead); a key with one null is still a key
    rows = _good()
    for r in rows[:2]:
        r.update(audit_id=None, stage=None)
    out = _validate(spark, runner, rows)
    assert (IS_NULL, REPEATED_STAGE) not in failed(out)
    rows = _good()
    for r in rows[:2]:
        r.update(audit_id=None)
    assert (IS_NULL, REPEATED_STAGE) in failed(_validate(spark, runner, rows))


def _prepared(spark, rows):
    return prepare_events(events_df(spark, rows), file_ranges_from_ledger(spark, ledger_entries()))


def test_the_hashed_pass_names_only_the_keys_that_repeat(spark):
    assert _hash_repeats(_prepared(spark, _good())) == set()
    rows = _good()
    rows[1].update(line_no=1)
    assert _hash_repeats(_prepared(spark, rows)) == {REPEATED_LINE}
    rows = _good()
    for r in rows[:2]:
        r.update(audit_id=None, stage=None)  # no key at all: not a repeat
    assert _hash_repeats(_prepared(spark, rows)) == set()


def test_a_hash_collision_alone_flags_no_row(spark, runner, monkeypatch):
    # as if both keys' hashes had collided: the exact count clears them
    monkeypatch.setattr("expectations.events._hash_repeats", lambda df: set(UNIQUE_KEYS))
    out = _validate(spark, runner, _good())
    assert out.success and failed(out) == set()
    rows = [*_good(), event("a1", 4, 0, verb="get")]
    assert failed(_validate(spark, runner, rows)) == {(IS_NULL, REPEATED_STAGE)}


def test_future_timestamp_fails(spark, runner):
    future = dt.datetime(2999, 1, 1, tzinfo=dt.UTC)
    rows = [event("a1", 1, 0, request_received_ts=future, stage_ts=future)]
    ranges = spark.createDataFrame([(SHA, future, future)], FILE_RANGES_SCHEMA)
    out = _validate(spark, runner, rows, ranges)
    assert failed(out) == {(IS_NULL, IN_FUTURE)}
    bad = next(r for r in out.results if r.column == IN_FUTURE)
    assert bad.observed["unexpected_count"] == 1 and "2999-01-01" in bad.observed["examples"][0]


def test_unknown_verb_is_a_warning_not_a_failure(spark, runner):
    rows = _good()
    rows[0]["verb"] = "frobnicate"
    out = _validate(spark, runner, rows)
    assert out.success
    assert failed(out) == {(IN_SET, "verb")}
    assert failed(out, "warning") == {(IN_SET, "verb")}
    bad = out.failures()[0]
    assert bad.severity == "warning" and bad.observed["examples"] == ["frobnicate"]


def test_only_the_failed_expectations_run_again_with_the_full_runs_outcome(
    spark, runner, monkeypatch
):
    from expectations.runner import WITH_EXAMPLES, _narrow

    rows = _good()
    rows[0].update(stage=None)
    rows[1].update(level="Verbose")
    prepared = with_key_checks(
        prepare_events(events_df(spark, rows), file_ranges_from_ledger(spark, ledger_entries()))
    )
    runs: list[int] = []
    real_run = runner._run

    def counting_run(df, suite, result_format):
        runs.append(len(suite.expectations))
        return real_run(df, suite, result_format)

    monkeypatch.setattr(runner, "_run", counting_run)
    out = runner.validate(prepared, build_events_suite())
    monkeypatch.undo()
    every = len(build_events_suite().expectations)
    assert runs == [every, 2]  # everything counted, then the two failures with examples
    assert failed(out) == {(NOT_NULL, "stage"), (IN_SET, "level")}
    assert {tuple(r.observed["examples"]) for r in out.failures()} == {(None,), ("Verbose",)}
    suite = build_events_suite()
    whole = runner._run(_narrow(prepared, suite), suite, WITH_EXAMPLES)[0]
    assert out.to_dict() == whole.to_dict()
