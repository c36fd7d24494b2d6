from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest
from click.testing import CliRunner

from jobs.cli import main as cli
from jobs.investigate import export
from jobs.investigate.main import RESULT_COLUMNS, run
from jobs.investigate.query import Query
from jobs.lake.ledger import LedgerEntry
from jobs.lake.runs import write_run
from jobs.settings import Layout

pytestmark = pytest.mark.spark

T0 = dt.datetime(2026, 11, 17, 10, 0, tzinfo=dt.UTC)
SHA = "a" * 64
EVIL = '=HYPERLINK("http://x","y")'
REASON = 'RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "cluster-admin" to User "2712"'
SINCE, UNTIL = "2026-11-16", "2026-11-20"


@pytest.fixture(scope="module")
def mini_home(spark, make_event, events_df, tmp_path_factory):
    """A hand-made lake: one exec, a formula-like user name, an impersonation, other days."""
    layout = Layout(tmp_path_factory.mktemp("investigate-mini") / "home")
    uri = "/api/v1/namespaces/prod/pods/web-1/exec?command=sh&command=-c&command=id%3Bls&container=web"
    # the two stages of one exec request (the same request, lines 1 and 2)
    exec_request = dict(
        audit_id="x1",
        verb="create",
        subresource="exec",
        object_name="web-1",
        namespace="prod",
        request_uri=uri,
        response_code=101,
        user_name="kubernetes-admin",
        authz_reason=REASON,
        source_ips=["203.0.113.9", "10.0.2.5"],
        ts=T0,
        evidence_sha256=SHA,
    )
    rows = [
        make_event(**exec_request, stage="ResponseStarted", line_no=1),
        make_event(**exec_request, stage="ResponseComplete", line_no=2),
        make_event(
            audit_id="e1",
            user_name=EVIL,
            ts=T0 + dt.timedelta(hours=1),
            evidence_sha256=SHA,
            line_no=3,
            source_ips=["2001:db8::7"],
        ),
        make_event(
            audit_id="i1",
            user_name="bob",
            impersonated_user="system:serviceaccount:p:d",
            ts=T0 + dt.timedelta(days=1),
            evidence_sha256=SHA,
            line_no=4,
        ),
        make_event(
            audit_id="o1",
            user_name="2712",
            ts=T0 + dt.timedelta(days=5),
            evidence_sha256=SHA,
            line_no=5,
        ),
    ]
    entry = LedgerEntry(
        evidence_sha256=SHA,
        cluster="c1",
        master="master-1",
        file="kubernetes.audit",
        compressed=False,
        damage=None,
        first_event=None,
        last_event=None,
        lines=5,
        events=5,
        duplicates=0,
        quarantined=0,
        blank=0,
        run_id="r1",
    )
    write_run(layout, "20261117T000000aaaaaaaa", events_df(rows), [entry])
    return layout


def _query(**kw):
    return Query(
        since=dt.datetime(2026, 11, 16, tzinfo=dt.UTC),
        until=dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
        **kw,
    )


def test_user_matches_person_behind_kubernetes_admin_and_exec_is_decoded(spark, mini_home):
    result = run(spark, mini_home, _query(user="2712"))
    assert [(r["audit_id"], r["stage"]) for r in result.rows] == [
        ("x1", "ResponseStarted"),
        ("x1", "ResponseComplete"),
    ]  # o1 is outside the range
    assert {r["exec_command"] for r in result.rows} == {"sh -c id;ls"}
    assert {r["evidence_file"] for r in result.rows} == {"kubernetes.audit"}
    assert [r["line_no"] for r in result.rows] == [1, 2]


def test_ip_filters_forwarded_entry_v6_and_nothing(spark, mini_home):
    assert [r["line_no"] for r in run(spark, mini_home, _query(ip="203.0.113.0/24")).rows] == [1, 2]
    assert [r["line_no"] for r in run(spark, mini_home, _query(ip="2001:db8::/64")).rows] == [3]
    assert run(spark, mini_home, _query(ip="10.9.0.0/16")).rows == []
    imp = run(spark, mini_home, _query(user="system:serviceaccount:p:d"))
    assert [r["line_no"] for r in imp.rows] == [4]


def test_csv_is_formula_safe_and_jsonl_round_trips(spark, mini_home, tmp_path):
    result = run(spark, mini_home, _query())
    csv_path = export.write(result, tmp_path / "x.csv", dt.datetime.now(dt.UTC))
    text = csv_path.read_bytes().decode("utf-8-sig")
    assert "'" + EVIL.replace('"', '""') in text
    assert "\r\n=" not in text and ",=" not in text
    jl = export.write(result, tmp_path / "x.jsonl", dt.datetime.now(dt.UTC))
    back = [json.loads(line) for line in jl.read_text().splitlines()]
    assert [list(b) for b in back] == [sorted(RESULT_COLUMNS)] * len(result.rows)
    for got, row in zip(back, result.rows, strict=True):
        for c in RESULT_COLUMNS:
            v = row[c]
            assert got[c] == (v.isoformat() if isinstance(v, dt.datetime | dt.date) else v), c
    assert "request_object" not in back[0] and "response_object" not in back[0]


def test_pdf_shows_query_events_evidence_and_manifest(spark, mini_home, tmp_path):
    from reports.investigation import manifest_path

    result = run(spark, mini_home, _query(user="2712", namespace="prod"))
    pdf = export.write(result, tmp_path / "case.pdf", dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for needle in (
        "--user",
        "2712",
        "--namespace",
        "prod",
        "sh -c id;ls",
        "203.0.113.9",
        "kubernetes.audit",
        "line 1",
        "line 2",
    ):
        assert needle in text, needle
    assert SHA[:40] in text.replace("\n", "").replace(" ", "")
    manifest = json.loads(manifest_path(pdf).read_text())
    assert manifest["query"]["user"] == "2712" and manifest["events"] == 2
    assert manifest["evidence"][0]["evidence_sha256"] == SHA
    assert set(manifest["attachments"]) == {"events.csv", "events.jsonl"}


def _cli(home, *args):
    return CliRunner().invoke(cli, ["investigate", "--home", str(home.home), *args])


def test_cli_table_and_nothing_matches(spark, mini_home):
    res = _cli(mini_home, "--since", SINCE, "--until", SINCE + "T12:00:00", "--user", "2712")
    assert res.exit_code == 0 and "no events match the query" in res.output
    res = _cli(mini_home, "--since", SINCE, "--until", UNTIL, "--user", "2712")
    assert res.exit_code == 0, res.output
    assert "sh -c id;ls" in res.output and "aaaaaaaaaaaa:1" in res.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--since", UNTIL, "--until", SINCE], "reversed"),
        (["--since", SINCE, "--until", UNTIL, "--ip", "10.0.0.0/33"], "CIDR"),
        (["--since", SINCE, "--until", UNTIL, "--cluster", "nope"], "unknown cluster"),
        (["--since", SINCE, "--until", UNTIL, "--detection", "nope"], "unknown detection"),
        (["--since", "yesterday", "--until", UNTIL], "ISO"),
        (["--since", SINCE, "--until", UNTIL, "--out", "x.xlsx"], "--out"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(spark, mini_home, args, needle):
    res = _cli(mini_home, *args)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kaudit: error: ") and needle in lines[0]


def test_cli_writes_csv(spark, mini_home, tmp_path):
    out = tmp_path / "e.csv"
    res = _cli(mini_home, "--since", SINCE, "--until", UNTIL, "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "4 events written" in res.output and out.exists()
