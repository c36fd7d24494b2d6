"""Issue 10, "No tracebacks": each case ends as one line naming the thing at fault, a documented
exit code, and nothing half-written. Spark never starts here except for ``policy match`` on
real lines (the session fixture)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobs.cli import main
from jobs.errors import EXIT_DATA, EXIT_PARTIAL_COLLECTION, EXIT_USAGE

EVENT = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Metadata",
    "auditID": "a-1",
    "stage": "ResponseComplete",
    "requestURI": "/livez",
    "verb": "get",
    "user": {"username": "kubernetes-admin", "groups": ["system:masters"]},
    "requestReceivedTimestamp": "2026-11-17T10:00:00.000001Z",
    "stageTimestamp": "2026-11-17T10:00:00.000101Z",
}
RUN_ID = "20261117T100000aaaaaaaa"


def _error_line(result, code: int) -> str:
    """The one stderr line of a failed command (asserting there is exactly one, no traceback)."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert "internal error" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kaudit: error: ")
    return lines[0]


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def no_spark(monkeypatch):
    """Every command here must fail before Spark starts."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("Spark started")

    monkeypatch.setattr("jobs._session.get_spark", refuse)


def _write_config(path: Path, logs: Path, extra: str = "") -> Path:
    path.write_text(
        "cluster: demo\ntimezone: UTC\n"
        f"masters:\n  - name: master-1\n    source: file://{logs}\n{extra}",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def collected(tmp_path) -> tuple[Path, Path]:
    """(config, home): one master with two events, collected (no Spark)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    lines = [json.dumps(EVENT), json.dumps({**EVENT, "auditID": "a-2"})]
    (logs / "kubernetes.audit.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = _write_config(tmp_path / "cfg.yaml", logs)
    home = tmp_path / "home"
    result = CliRunner().invoke(main, ["collect", "--config", str(config), "--home", str(home)])
    assert result.exit_code == 0, result.output
    return config, home


# 1. ingest on a read-only home ------------------------------------------------------------

_INGEST_WITHOUT_SPARK = (
    "import sys, jobs._session as s; s.get_spark = lambda *a, **k: object(); "
    "from jobs.cli import main; main(['ingest', '--home', sys.argv[1]])"
)
_RO_MOUNT = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && shift && exec "$@"'


def _read_only_runner(home: Path) -> tuple[list[str], str]:
    """How to run a command on ``home`` made read-only, and the error the OS gives.

    chmod does not stop root, so as root the home is bind-mounted read-only in a private
    mount namespace (``unshare -m``): a real EROFS that root cannot write through either.
    """
    if os.geteuid() != 0:
        for path in [home, *home.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        return [], "Permission denied"
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", _RO_MOUNT, "sh", str(home), "true"],
        capture_output=True,
        check=False,
    )
    if shutil.which("unshare") is None or probe.returncode != 0:
        pytest.skip(f"root without mount namespaces, no read-only home possible: {probe.stderr!r}")
    return ["unshare", "-m", "sh", "-c", _RO_MOUNT, "sh", str(home)], "Read-only file system"


def test_ingest_on_read_only_home_names_the_path_and_commits_nothing(collected):
    _, home = collected
    before = _files(home)
    prefix, reason = _read_only_runner(home)
    try:
        proc = subprocess.run(
            [*prefix, sys.executable, "-c", _INGEST_WITHOUT_SPARK, str(home)],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parents[1],
        )
    finally:
        for path in [home, *home.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
    assert proc.returncode == EXIT_DATA, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.splitlines() == [f"kaudit: error: {home / 'lake'}: {reason}"]
    assert _files(home) == before  # no lake, no ledger, custody untouched
    assert not (home / "lake").exists()


# 2. demo with a week that does not exist --------------------------------------------------


def test_demo_bad_week_fails_before_anything_is_generated(tmp_path, no_spark):
    out = tmp_path / "demo-out"
    result = CliRunner().invoke(main, ["demo", "--week", "2026-W99", "--out", str(out)])
    line = _error_line(result, EXIT_USAGE)
    assert "2026-W99" in line
    assert not out.exists()


# 3. config values: every key at load, every problem in one message ------------------------

BAD_CONFIG = """\
cluster: demo
timezone: Mars/Olympus
masters:
  - name: master-1
    source: file:///nonexistent
    port: "abc"
    timeout: soon
report:
  trusted_proxies: [not-an-ip, 10.0.0.0/8]
  system_users: alice
  language: fr
delivery: {gate: maybe}
detections: {alert: [not-a-detection], hosting_asns: perhaps}
schedule: {weekly_report: "not cron at all"}
bogus: 1
"""
BAD_KEYS = (
    "config: unknown key 'bogus'",
    "timezone: unknown time zone 'Mars/Olympus'",
    "masters[0].port: 'abc' is not a port number",
    "masters[0].timeout: 'soon' is not a number",
    "report.trusted_proxies: 'not-an-ip' is not an IP address or CIDR",
    "report.system_users: expected a list of strings",
    "report.language: 'fr' is not one of",
    "delivery.gate: 'maybe' is not one of",
    "detections.alert: unknown detection 'not-a-detection'",
    "detections.hosting_asns: 'perhaps' is not true or false",
    "schedule.weekly_report: 'not cron at all'",
)


@pytest.mark.parametrize("command", ["collect", "report"])
def test_bad_config_lists_every_problem_once_exit_2(tmp_path, no_spark, command):
    config = tmp_path / "bad.yaml"
    config.write_text(BAD_CONFIG, encoding="utf-8")
    home = tmp_path / "home"
    args = [command, "--config", str(config), "--home", str(home)]
    result = CliRunner().invoke(
        main, args + (["--week", "2026-W47"] if command == "report" else [])
    )
    assert result.exit_code == EXIT_USAGE, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert lines[0] == f"kaudit: error: config has {len(BAD_KEYS)} problems:"
    assert len(lines) == 1 + len(BAD_KEYS)
    for key, line in zip(BAD_KEYS, lines[1:], strict=True):
        assert line.startswith(f"  {config}: {key}"), (key, line)
    assert not home.exists()


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("report: {trusted_proxies: [not-an-ip]}\n", "report.trusted_proxies: 'not-an-ip'"),
        ("report: {system_user_prefixes: [1]}\n", "report.system_user_prefixes: expected"),
        ("schedule: {collect_ingest: 5}\n", "schedule.collect_ingest: 5: not a 5-field cron"),
        ("delivery: {retries: many}\n", "delivery.retries: 'many' is not a whole number"),
    ],
)
def test_one_bad_config_value_is_one_problem(tmp_path, extra, problem):
    config = _write_config(tmp_path / "cfg.yaml", tmp_path, extra)
    result = CliRunner().invoke(main, ["collect", "--config", str(config), "--home", "h"])
    assert result.exit_code == EXIT_USAGE
    lines = result.stderr.splitlines()
    assert lines[0] == "kaudit: error: config has 1 problem:"
    assert len(lines) == 2 and lines[1].startswith(f"  {config}: {problem}"), lines


# 4. and 5. a report policy that is missing, invalid, or absurdly deep ----------------------

POLICY_HEAD = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (None, "{p}: cannot read policy file: No such file or directory"),
        (POLICY_HEAD + "  - level: [Metadata\n", "{p}:5: invalid YAML: "),
        (POLICY_HEAD + "  - level: Metadata\n    bogus: 1\n", '{p}:5: rules[0].bogus: unknown field "bogus"'),
        ("[" * 100_000, "{p}: invalid YAML: nested deeper than 64 levels at line 1"),
    ],
    ids=["missing", "invalid-yaml", "unknown-field", "deep"],
)  # fmt: skip
def test_report_with_bad_policy_fails_before_spark(collected, tmp_path, no_spark, body, expected):
    _, home = collected
    policy = tmp_path / "policy.yaml"
    if body is not None:
        policy.write_text(body, encoding="utf-8")
    config = _write_config(tmp_path / "cfgp.yaml", tmp_path / "logs", f"policy: {policy}\n")
    args = ["report", "--config", str(config), "--week", "2026-W47", "--home", str(home)]
    line = _error_line(CliRunner().invoke(main, args), EXIT_USAGE)
    assert line.startswith("kaudit: error: " + expected.format(p=policy)), line


def test_policy_check_deeply_nested_yaml_one_line(tmp_path):
    policy = tmp_path / "deep.yaml"
    policy.write_text("[" * 100_000, encoding="utf-8")
    result = CliRunner().invoke(main, ["policy", "check", "--policy", str(policy)])
    assert _error_line(result, EXIT_USAGE) == (
        f"kaudit: error: {policy}: invalid YAML: nested deeper than 64 levels at line 1"
    )


def test_parse_policy_deep_mapping_is_a_policy_error():
    from jobs.policy import PolicyError, parse_policy

    with pytest.raises(PolicyError, match="nested deeper than 64 levels"):
        parse_policy("{a: " * 100_000, source="x.yaml")


# 6. policy match: a missing file; the same line three times --------------------------------


def test_policy_match_missing_file_names_it_exit_2(tmp_path, no_spark):
    events = tmp_path / "ok.jsonl"
    events.write_text(json.dumps(EVENT) + "\n", encoding="utf-8")
    missing = tmp_path / "missing.jsonl"
    result = CliRunner().invoke(main, ["policy", "match", str(events), str(missing)])
    assert _error_line(result, EXIT_USAGE) == (
        f"kaudit: error: {missing}: cannot read events file: No such file or directory"
    )
    assert result.stdout == ""


@pytest.mark.spark
def test_policy_match_same_line_three_times_each_has_its_audit_id(spark, tmp_path):
    events = tmp_path / "three.jsonl"
    events.write_text((json.dumps(EVENT) + "\n") * 3, encoding="utf-8")
    result = CliRunner().invoke(main, ["policy", "match", str(events)])
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    expected = {"audit_id": "a-1", "stage": "ResponseComplete", "rule": 11, "level": "Metadata"}
    assert out == [{"line": n, **expected} for n in (1, 2, 3)]


# 7. a truncated ledger run file ------------------------------------------------------------


@pytest.fixture
def truncated_ledger(collected) -> tuple[Path, Path, Path]:
    from jobs.lake.ledger import LedgerEntry, write_run_file
    from jobs.settings import Layout

    config, home = collected
    layout = Layout(home)
    entry = {
        "evidence_sha256": "0" * 64, "cluster": "demo", "master": "master-1",
        "file": "kubernetes.audit.log", "compressed": False, "damage": None,
        "first_event": None, "last_event": None,
        "lines": 2, "events": 2, "duplicates": 0, "quarantined": 0, "blank": 0,
    }  # fmt: skip
    write_run_file(layout, RUN_ID, [LedgerEntry.from_json(entry, RUN_ID)])
    run_file = layout.ledger / f"{RUN_ID}.json"
    data = run_file.read_bytes()
    run_file.write_bytes(data[: len(data) // 2])
    return config, home, run_file


def _ledger_error(line: str, run_file: Path) -> None:
    assert line.startswith(f"kaudit: error: {run_file}: ledger run file is damaged"), line


def test_ledger_truncated_run_file_exit_4(truncated_ledger):
    _, home, run_file = truncated_ledger
    result = CliRunner().invoke(main, ["ledger", "--home", str(home)])
    _ledger_error(_error_line(result, EXIT_DATA), run_file)


def test_report_truncated_run_file_exit_4_before_spark(truncated_ledger, no_spark):
    config, home, run_file = truncated_ledger
    args = ["report", "--config", str(config), "--week", "2026-W47", "--home", str(home)]
    _ledger_error(_error_line(CliRunner().invoke(main, args), EXIT_DATA), run_file)
    assert not (home / "marts").exists()
    assert not (home / "reports").exists()


def test_ingest_truncated_run_file_exit_4_commits_nothing(truncated_ledger, monkeypatch):
    _, home, run_file = truncated_ledger
    # the failure comes before any Spark work: a stand-in session proves it is never used
    monkeypatch.setattr("jobs._session.get_spark", lambda *_a, **_k: object())
    before = _files(home)
    result = CliRunner().invoke(main, ["ingest", "--home", str(home)])
    _ledger_error(_error_line(result, EXIT_DATA), run_file)
    after = _files(home)
    assert after.pop("lake/.lock", b"") == b""  # the lock file is all ingest may leave
    assert after == before


# 8. collection failures name the path -------------------------------------------------------


def test_collection_failure_names_the_path_not_a_python_class(tmp_path):
    missing = tmp_path / "no-such-dir"
    config = _write_config(tmp_path / "cfg.yaml", missing)
    result = CliRunner().invoke(
        main, ["collect", "--config", str(config), "--home", str(tmp_path / "home")]
    )
    assert result.exit_code == EXIT_PARTIAL_COLLECTION, result.output
    assert "Traceback" not in result.output
    assert f"COLLECTION FAILURE: cannot list {missing}: No such file or directory" in result.stdout
    assert "FileNotFoundError" not in result.output and "Errno" not in result.output
    assert result.stderr.startswith("kaudit: error: partial collection of master-1")


# 9. a mistyped --home is an error, never a new empty home ----------------------------------


@pytest.mark.parametrize("command", ["ingest", "ledger", "report", "verify"])
def test_mistyped_home_is_an_error(collected, tmp_path, no_spark, command):
    config, _ = collected
    typo = tmp_path / "hmoe"
    args = [command, "--home", str(typo)]
    if command == "report":
        args += ["--config", str(config), "--week", "2026-W47"]
    line = _error_line(CliRunner().invoke(main, args), EXIT_USAGE)
    assert line.startswith(f"kaudit: error: no kaudit home at {typo}")
    assert not typo.exists()


def test_report_ends_the_jvm_before_the_pdf(collected, monkeypatch):
    # not an error: kaudit report hands weekly_report the call that ends Spark's JVM once
    # validation is done (tests/jobs/test_pipeline.py: weekly_report calls it there)
    import click

    from jobs import _session, pipeline

    config, home = collected
    seen: dict[str, object] = {}

    def weekly_report(spark, *_args, **kwargs):
        seen.update(kwargs, spark=spark)
        raise click.exceptions.Exit(0)

    session = object()
    monkeypatch.setattr(_session, "get_spark", lambda *_a, **_k: session)
    monkeypatch.setattr(pipeline, "weekly_report", weekly_report)
    args = ["report", "--config", str(config), "--week", "2026-W47", "--home", str(home)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert seen["spark"] is session
    assert seen["release_spark"] is _session.stop_spark
