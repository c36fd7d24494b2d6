"""``kaudit policy match`` / ``check`` through click's CliRunner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from jobs.cli import main
from jobs.errors import EXIT_USAGE
from jobs.ingest.transforms import NOT_EVENT, NOT_JSON

KUBE_PROXY_WATCH = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Metadata",
    "auditID": "a-1",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/endpoints?watch=true",
    "verb": "watch",
    "user": {"username": "system:kube-proxy", "groups": ["system:authenticated"]},
    "objectRef": {"resource": "endpoints", "apiVersion": "v1"},
    "requestReceivedTimestamp": "2024-03-05T14:07:09.000001Z",
    "stageTimestamp": "2024-03-05T14:07:09.100001Z",
}
ADMIN_LIVEZ = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Metadata",
    "auditID": "a-2",
    "stage": "ResponseComplete",
    "requestURI": "/livez",
    "verb": "get",
    "user": {"username": "kubernetes-admin", "groups": ["system:masters"]},
    "requestReceivedTimestamp": "2024-03-05T14:07:10.000001Z",
    "stageTimestamp": "2024-03-05T14:07:10.000101Z",
}


def _output(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.spark
def test_policy_match_stdin_ack_default_with_bad_lines(spark):
    lines = [
        json.dumps(KUBE_PROXY_WATCH),
        "this is not json",
        "",
        json.dumps(ADMIN_LIVEZ),
        '{"kind": 0}',
    ]
    out = _output(CliRunner().invoke(main, ["policy", "match"], input="\n".join(lines) + "\n"))
    assert [o["line"] for o in out] == [1, 2, 3, 4, 5]
    # ACK (spec §9 A01, A21): kube-proxy watch endpoints -> rule 0 None; /livez -> catch-all 11.
    assert out[0] == {
        "line": 1,
        "audit_id": "a-1",
        "stage": "ResponseComplete",
        "rule": 0,
        "level": "None",
    }
    assert out[3] == {
        "line": 4,
        "audit_id": "a-2",
        "stage": "ResponseComplete",
        "rule": 11,
        "level": "Metadata",
    }
    assert set(out[1]) == set(out[2]) == set(out[4]) == {"line", "error"}
    # Non-events carry ingest's own quarantine reason.
    assert out[1]["error"].startswith(f"{NOT_JSON}: ")
    assert out[2]["error"] == "blank line"
    assert out[4]["error"].startswith(f"{NOT_EVENT}: ")


@pytest.mark.spark
def test_policy_match_files_with_policy_file(spark, tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\n"
        "rules:\n- level: Request\n  users: [kubernetes-admin]\n"
    )
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text(json.dumps(KUBE_PROXY_WATCH) + "\n" + json.dumps(ADMIN_LIVEZ) + "\n")
    second.write_text("[1, 2]\n")
    out = _output(
        CliRunner().invoke(
            main, ["policy", "match", "--policy", str(policy_file), str(first), str(second)]
        )
    )
    assert [(o["file"], o["line"]) for o in out] == [
        (str(first), 1),
        (str(first), 2),
        (str(second), 1),
    ]
    assert (out[0]["rule"], out[0]["level"]) == (None, "None")
    assert (out[1]["rule"], out[1]["level"]) == (0, "Request")
    assert "error" in out[2]


def test_policy_check_prints_rules_of_default():
    from jobs.policy.loader import load_default_policy

    result = CliRunner().invoke(main, ["policy", "check"])
    assert result.exit_code == 0, result.output
    rule_lines = result.stdout.splitlines()[1:]
    assert len(rule_lines) == len(load_default_policy().rules)
    assert (
        rule_lines[0].split()[:2] == ["0", "None"] and "users=[system:kube-proxy]" in rule_lines[0]
    )
    assert "(catch-all)" in rule_lines[-1]


def test_policy_check_bad_policy_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Sometimes\n")
    for command in (["check"], ["match"]):
        result = CliRunner().invoke(main, ["policy", *command, "--policy", str(bad)], input="")
        assert result.exit_code == EXIT_USAGE
        assert f"{bad}:4: rules[0].level" in result.stderr and "Sometimes" in result.stderr
