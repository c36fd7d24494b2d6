"""Hostile and broken input: every line lands in exactly one bucket, nothing crashes."""

from __future__ import annotations

import gzip
import json

import pytest
from pyspark.sql import functions as F

import jobs.ingest.main
from jobs.ingest.main import run as ingest
from jobs.lake.events import read_events
from jobs.lake.ledger import read_ledger
from jobs.lake.runs import rollback_uncommitted

MAX_LINE = 1 << 20  # 1 MiB in tests, so a 10 MB line is far over it


def ev(i, stage="ResponseComplete", **extra):
    body = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"id-{i}",
        "stage": stage,
        "requestURI": "/api/v1/pods",
        "verb": "list",
        "user": {"username": "alice", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.1"],
        "requestReceivedTimestamp": "2026-11-18T01:02:03.000001Z",
        "stageTimestamp": "2026-11-18T01:02:03.000002Z",
    }
    body.update(extra)
    return json.dumps(body, separators=(",", ":"))


HOSTILE = [  # (line bytes, expected bucket, expected reason)
    (ev(1).encode(), "event", None),
    (b"", "blank", None),
    (b"   \t", "blank", None),
    (b"this is not json", "quarantined", "not_json"),
    (b'{"kind":"Event","auditID":', "quarantined", "not_json"),
    (b"[1,2,3]", "quarantined", "not_object"),
    (b"42", "quarantined", "not_object"),
    (b'{"kind":0}', "quarantined", "kind_not_event"),
    (b'{"kind":"EventList","items":[]}', "quarantined", "kind_not_event"),
    (b'{"auditID":"x"}', "quarantined", "kind_not_event"),
    (
        ev(2, requestReceivedTimestamp=None, stageTimestamp=None).encode(),
        "quarantined",
        "no_timestamp",
    ),
    (
        ev(3, requestReceivedTimestamp="yesterday", stageTimestamp="soon").encode(),
        "quarantined",
        "no_timestamp",
    ),
    (ev(4).encode().replace(b"alice", b"al\xffice"), "quarantined", "invalid_utf8"),
    (ev(5).encode().replace(b"alice", b"al\x00ice"), "quarantined", "nul_bytes"),
    (ev(6).encode() + b" trailing", "quarantined", "not_json"),
    (ev(7).encode() + ev(8).encode(), "quarantined", "not_json"),
    (
        ev(9, user={"username": "bob", "extra": {"k": "not-a-list"}}).encode(),
        "quarantined",
        "bad_field_types",
    ),
    (ev(1).encode(), "duplicate", None),  # same auditID + stage as line 1
    (ev(1, stage="ResponseStarted").encode(), "event", None),  # other stage: not a duplicate
    (
        b'{"kind":"Event","stage":"ResponseComplete","requestReceivedTimestamp":"2026-11-18T01:02:03Z"}',
        "event",
        None,
    ),  # no auditID: deduplicated by content
    (
        b'{"kind":"Event","stage":"ResponseComplete","requestReceivedTimestamp":"2026-11-18T01:02:03Z"}',
        "duplicate",
        None,
    ),
    (ev(10, user={}, **{"<script>": "x"}).encode() + b"\r", "event", None),  # CRLF, odd keys
    (
        ev(11, timestamp="2019-01-02T03:04:05Z", requestReceivedTimestamp=None).encode(),
        "event",
        None,
    ),  # v1beta1 shape
    (ev(13, userAgent='x}{"', requestURI='/api/v1/pods?q=} {"').encode(), "event", None),
    # a kind-not-Event line that carries an event's auditID and stage, before the event:
    (
        b'{"kind":"Evil","auditID":"id-14","stage":"ResponseComplete"}',
        "quarantined",
        "kind_not_event",
    ),
    (ev(14).encode(), "event", None),  # ... must not make the real event a duplicate
    (
        ev(
            12,
            apiVersion="audit.k8s.io/v1alpha1",
            objectRef={"resource": "deployments", "apiVersion": "apps/v1", "name": "d"},
        ).encode(),
        "event",
        None,
    ),  # v1alpha1 objectRef: group inside apiVersion
]


@pytest.fixture(scope="module")
def hostile_lake(spark, tmp_path_factory):
    from jobs.evidence.main import run_collect
    from jobs.settings import Layout, parse_config

    tmp = tmp_path_factory.mktemp("hostile")
    m = tmp / "m1"
    m.mkdir()
    (m / "kubernetes-2026-11-18T00-00-00.000.audit").write_bytes(
        b"\n".join(line for line, _, _ in HOSTILE) + b"\n"
    )
    # truncated gzip: 200 good lines then the stream is cut
    body = "".join(ev(1000 + i) + "\n" for i in range(200)).encode()
    gz = gzip.compress(body, mtime=0)
    (m / "kubernetes-2026-11-18T01-00-00.000.audit.gz").write_bytes(gz[: len(gz) * 2 // 3])
    # a 10 MB line between two good ones
    (m / "kubernetes-2026-11-18T02-00-00.000.audit").write_bytes(
        (ev(2001) + "\n").encode()
        + b'{"kind":"Event","x":"'
        + b"a" * (10 << 20)
        + b'"}\n'
        + (ev(2002) + "\n").encode()
    )
    # a file of NUL bytes, and an empty one
    (m / "kubernetes-2026-11-18T03-00-00.000.audit").write_bytes(b"\x00" * 4096)
    (m / "kubernetes-2026-11-18T04-00-00.000.audit").write_bytes(b"")
    config = parse_config(
        {"cluster": "c1", "timezone": "UTC", "masters": [{"name": "m1", "source": f"file://{m}"}]},
        tmp,
    )
    layout = Layout(tmp / "home")
    run_collect(config, layout)
    result = ingest(spark, layout, max_line_bytes=MAX_LINE)
    by_file = {e.file: e for e in result.files}
    return layout, by_file


def test_counts_add_up_for_every_file(hostile_lake):
    layout, by_file = hostile_lake
    assert len(by_file) == 5
    for e in read_ledger(layout):
        assert e.lines == e.events + e.duplicates + e.quarantined + e.blank, e


def test_each_hostile_line_lands_in_its_bucket(spark, hostile_lake):
    layout, by_file = hostile_lake
    entry = by_file["kubernetes-2026-11-18T00-00-00.000.audit"]
    sha = entry.evidence_sha256
    expected = {
        b: sum(1 for _, bb, _ in HOSTILE if bb == b)
        for b in ("event", "duplicate", "quarantined", "blank")
    }
    assert entry.lines == len(HOSTILE)
    assert {
        "event": entry.events,
        "duplicate": entry.duplicates,
        "quarantined": entry.quarantined,
        "blank": entry.blank,
    } == expected
    q = {
        r.line_no: r
        for r in spark.read.parquet(str(layout.quarantine))
        .where(F.col("evidence_sha256") == sha)
        .collect()
    }
    events = {
        r.line_no
        for r in spark.read.parquet(str(layout.events))
        .where(F.col("evidence_sha256") == sha)
        .select("line_no")
        .collect()
    }
    dups = {
        r.line_no
        for r in spark.read.parquet(str(layout.duplicates))
        .where(F.col("evidence_sha256") == sha)
        .select("line_no")
        .collect()
    }
    for n, (line, bucket, reason) in enumerate(HOSTILE, start=1):
        if bucket == "quarantined":
            assert n in q, (n, line[:60])
            assert q[n].reason == reason, (n, line[:60], q[n].reason)
            assert bytes(q[n].raw) == line  # the exact bytes, invalid UTF-8 and NULs included
        elif bucket == "event":
            assert n in events, (n, line[:60])
        elif bucket == "duplicate":
            assert n in dups, (n, line[:60])


def test_event_shapes_normalize(spark, hostile_lake):
    layout, _ = hostile_lake
    rows = {
        r.audit_id: r
        for r in spark.read.parquet(str(layout.events))
        .where(F.col("audit_id").isin("id-11", "id-12", "id-10"))
        .collect()
    }
    assert rows["id-11"].event_shape == "v1beta1"
    assert rows["id-11"].request_received_ts.isoformat() == "2019-01-02T03:04:05"
    assert rows["id-12"].api_group == "apps" and rows["id-12"].resource == "deployments"
    assert rows["id-10"].user_name is None  # "user": {} is no authenticated user
    assert rows["id-10"].api_group is None  # no objectRef: a non-resource request


def test_truncated_gzip_keeps_the_lines_before_the_damage(spark, hostile_lake):
    layout, by_file = hostile_lake
    e = by_file["kubernetes-2026-11-18T01-00-00.000.audit.gz"]
    assert e.damage and "truncated" in e.damage
    assert 50 < e.events < 200
    assert e.quarantined == 1 and e.lines == e.events + 1
    [q] = (
        spark.read.parquet(str(layout.quarantine))
        .where(F.col("evidence_sha256") == e.evidence_sha256)
        .collect()
    )
    assert q.reason == "gzip_truncated" and q.line_no == e.lines


def test_ten_megabyte_line_is_quarantined_and_neighbours_survive(spark, hostile_lake):
    layout, by_file = hostile_lake
    e = by_file["kubernetes-2026-11-18T02-00-00.000.audit"]
    assert (e.lines, e.events, e.quarantined) == (3, 2, 1)
    [q] = (
        spark.read.parquet(str(layout.quarantine))
        .where(F.col("evidence_sha256") == e.evidence_sha256)
        .collect()
    )
    assert q.reason == "line_too_long" and q.line_no == 2
    assert q.raw_length > 10 << 20


def test_nul_file_and_empty_file(hostile_lake):
    _, by_file = hostile_lake
    nul = by_file["kubernetes-2026-11-18T03-00-00.000.audit"]
    assert (nul.lines, nul.quarantined) == (1, 1)
    empty = by_file["kubernetes-2026-11-18T04-00-00.000.audit"]
    assert empty.lines == 0 and empty.events == 0


def test_duplicates_against_the_lake_across_runs(spark, tmp_path, collect_dirs):
    m = tmp_path / "m"
    m.mkdir()
    (m / "kubernetes-2026-11-18T00-00-00.000.audit").write_text(ev(1) + "\n" + ev(2) + "\n")
    layout = collect_dirs({"m": m})
    ingest(spark, layout)
    # the active file, collected later, repeats event 2 and adds event 3
    (m / "kubernetes.audit").write_text(ev(2) + "\n" + ev(3) + "\n")
    collect_dirs({"m": m})
    [second] = ingest(spark, layout).files
    assert (second.events, second.duplicates) == (1, 1)
    ids = sorted(r.audit_id for r in spark.read.parquet(str(layout.events)).collect())
    assert ids == ["id-1", "id-2", "id-3"]


def test_duplicates_spanning_several_days_all_reach_the_lake(spark, tmp_path, collect_dirs):
    m = tmp_path / "m"
    m.mkdir()
    days = [f"2026-11-{d:02d}T01:02:03.000001Z" for d in range(16, 23)]
    body = "".join(ev(i, requestReceivedTimestamp=t) + "\n" for i, t in enumerate(days))
    (m / "kubernetes-2026-11-23T00-00-00.000.audit").write_text(body)
    (m / "kubernetes.audit").write_text(body + ev(99) + "\n")  # repeats them all, adds one
    layout = collect_dirs({"m": m})
    entries = ingest(spark, layout).files
    assert sum(e.duplicates for e in entries) == len(days)
    dups = spark.read.parquet(str(layout.duplicates))
    assert dups.count() == len(days)
    assert spark.read.parquet(str(layout.events)).count() == len(days) + 1


def test_killed_ingest_rerun_leaves_the_same_lake(spark, tmp_path, collect_dirs, monkeypatch):
    m = tmp_path / "m"
    m.mkdir()
    for k in range(3):
        (m / f"kubernetes-2026-11-1{k}T00-00-00.000.audit").write_text(
            "".join(ev(10 * k + i) + "\n" for i in range(12)) + ev(0) + "\n"
        )

    def snapshot(layout):
        def rows(path):
            return sorted(
                tuple(r)
                for r in spark.read.parquet(str(path))
                .select("evidence_sha256", "line_no")
                .collect()
            )

        return rows(layout.events), rows(layout.duplicates), read_ledger_counts(layout)

    clean = collect_dirs({"m": m}, home=tmp_path / "clean")
    ingest(spark, clean)
    crashed = collect_dirs({"m": m}, home=tmp_path / "crashed")

    def killed(*_args, **_kwargs):
        raise KeyboardInterrupt("killed between move and commit")

    with monkeypatch.context() as patched:
        patched.setattr(jobs.ingest.main, "commit_run", killed)
        with pytest.raises(KeyboardInterrupt):
            ingest(spark, crashed)
    assert list(crashed.events.rglob("run-*.parquet"))  # files moved, but not committed
    assert read_ledger(crashed) == []
    assert read_events(spark, crashed).count() == 0  # readers never see uncommitted files
    ingest(spark, crashed)  # re-run: rolls back the orphaned files first
    assert snapshot(crashed) == snapshot(clean)
    assert rollback_uncommitted(crashed) == 0


def read_ledger_counts(layout):
    return sorted(
        (e.evidence_sha256, e.lines, e.events, e.duplicates, e.quarantined, e.blank)
        for e in read_ledger(layout)
    )


def test_gzip_bomb_of_one_endless_line_is_bounded(tmp_path):
    from jobs.ingest.preflight import gunzip_salvage

    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(gzip.compress(b"{" + b"a" * (40 << 20), mtime=0))
    damage, tail = gunzip_salvage(bomb, tmp_path / "out", max_bytes=8 << 20)
    assert damage and "bound" in damage
    assert (tmp_path / "out").stat().st_size == 0  # no complete line before the bound
    assert tail.startswith(b"{aaa") and len(tail) == 1 << 20  # the first MiB is kept


def test_evidence_missing_from_the_store_commits_nothing(spark, tmp_path, collect_dirs):
    from jobs.errors import EXIT_DATA
    from jobs.evidence.custody import read_custody
    from jobs.evidence.store import evidence_path
    from jobs.ingest.errors import IngestError

    m = tmp_path / "m"
    m.mkdir()
    (m / "kubernetes-2026-11-18T00-00-00.000.audit").write_text(ev(1) + "\n")
    layout = collect_dirs({"m": m})
    [rec] = read_custody(layout)
    evidence_path(layout, rec["sha256"]).unlink()
    with pytest.raises(IngestError, match="evidence missing from the store") as err:
        ingest(spark, layout)
    assert err.value.exit_code == EXIT_DATA
    assert read_ledger(layout) == []


ONE_FLAW = {  # file -> (the one odd line, its reason); the preflight flags only that file
    "kubernetes-2026-11-19T00-00-00.000.audit": (
        ev(3001).encode().replace(b"alice", b"al\xffice"),
        "invalid_utf8",
    ),
    "kubernetes-2026-11-19T01-00-00.000.audit": (
        ev(3002).encode().replace(b"alice", b"al\x00ice"),
        "nul_bytes",
    ),
    "kubernetes-2026-11-19T02-00-00.000.audit": (ev(3003).encode() + ev(3004).encode(), "not_json"),
    "kubernetes-2026-11-19T03-00-00.000.audit": (ev(3005, userAgent="a}{b").encode(), None),
}


def test_a_flaw_is_found_whichever_check_its_file_needs(spark, collect_dirs, tmp_path):
    """Each file has one flaw (or a `}{` inside a string): the per-file flags gate exactly it."""
    m = tmp_path / "m1"
    m.mkdir()
    for k, (name, (line, _)) in enumerate(ONE_FLAW.items()):
        good = [ev(4000 + 10 * k + i).encode() for i in range(3)]
        (m / name).write_bytes(b"\n".join([good[0], line, *good[1:]]) + b"\n")
    layout = collect_dirs({"m1": m})
    result = ingest(spark, layout, max_line_bytes=MAX_LINE)
    by_file = {e.file: e for e in result.files}
    quarantine = spark.read.parquet(str(layout.quarantine)).collect()
    for name, (line, reason) in ONE_FLAW.items():
        entry = by_file[name]
        rows = [r for r in quarantine if r.evidence_sha256 == entry.evidence_sha256]
        if reason is None:
            assert (entry.events, entry.quarantined, rows) == (4, 0, []), name
        else:
            assert (entry.events, entry.quarantined) == (3, 1), name
            assert [(r.line_no, r.reason, bytes(r.raw)) for r in rows] == [(2, reason, line)]


def test_footer_counts_equal_spark_counts(spark, tmp_path, collect_dirs, monkeypatch):
    """The line accounting read from the staged files' footers is Spark's, or not used."""
    from jobs.ingest.accounting import footer_counts, spark_counts

    seen = []

    def both(spark_, staged):
        seen.append((footer_counts(staged), spark_counts(spark_, staged)))
        return seen[-1][1]

    monkeypatch.setattr(jobs.ingest.main, "staged_counts", both)
    m = tmp_path / "m"
    m.mkdir()
    days = [f"2026-11-{d:02d}T01:02:03.000001Z" for d in range(16, 19)]
    (m / "kubernetes-2026-11-19T00-00-00.000.audit").write_text(
        "".join(ev(100 + i, requestReceivedTimestamp=t) + "\n" for i, t in enumerate(days)) + "\n"
    )
    (m / "kubernetes-2026-11-19T01-00-00.000.audit").write_bytes(
        b"\n".join(line for line, bucket, _ in HOSTILE if bucket != "duplicate") + b"\n"
    )
    gz = gzip.compress("".join(ev(500 + i) + "\n" for i in range(200)).encode(), mtime=0)
    (m / "kubernetes-2026-11-19T02-00-00.000.audit.gz").write_bytes(gz[: len(gz) * 2 // 3])
    layout = collect_dirs({"m": m})
    assert ingest(spark, layout, max_line_bytes=MAX_LINE).run_id
    # a second run whose files repeat keys: the losers' staged files are rewritten
    (m / "kubernetes.audit").write_text(ev(1) + "\n" + ev(777) + "\n" + ev(778) + "\n")
    collect_dirs({"m": m})
    assert ingest(spark, layout, max_line_bytes=MAX_LINE).run_id
    [(first, first_spark), (second, second_spark)] = seen
    assert first is not None and first == first_spark  # the footers said it all
    n_events = sum(b == "event" for _, b, _ in HOSTILE)
    n_quarantined = sum(b == "quarantined" for _, b, _ in HOSTILE)
    assert sorted((c.event, c.quarantined, c.blank) for c in first.values()) == sorted(
        [(3, 0, 1), (n_events, n_quarantined, 2), (first_gz_events(first), 1, 0)]
    )
    spans = {(c.first_event, c.last_event) for c in first.values()}
    assert ("2026-11-16T01:02:03.000001Z", "2026-11-18T01:02:03.000001Z") in spans
    assert second is None or second == second_spark
    assert second_spark and sum(c.duplicate for c in second_spark.values()) == 1  # id-1


def first_gz_events(counts):
    """The events of the truncated gzip file: the one whose only quarantined line is the damage."""
    [n] = [c.event for c in counts.values() if c.quarantined == 1 and c.blank == 0]
    assert n > 0
    return n


def test_footer_counts_refuse_a_file_of_two_evidence_files(tmp_path):
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    from jobs.ingest.accounting import footer_counts

    folder = tmp_path / "bucket=event" / "cluster=c1" / "event_date=2026-11-18"
    folder.mkdir(parents=True)
    ts = pa.array(
        [dt.datetime(2026, 11, 18, 1, 2, 3, 4, tzinfo=dt.UTC)] * 2, pa.timestamp("us", tz="UTC")
    )
    table = pa.table(
        {"evidence_sha256": ["a" * 64, "a" * 64], "line_no": [1, 2], "request_received_ts": ts}
    )
    pq.write_table(table, folder / "part-00000.parquet")
    counts = footer_counts(tmp_path)
    assert counts is not None and counts["a" * 64].event == 2
    assert counts["a" * 64].first_event == "2026-11-18T01:02:03.000004Z"
    assert counts["a" * 64].max_line == 2
    mixed = table.set_column(0, "evidence_sha256", pa.array(["a" * 64, "b" * 64]))
    pq.write_table(mixed, folder / "part-00001.parquet")
    assert footer_counts(tmp_path) is None
