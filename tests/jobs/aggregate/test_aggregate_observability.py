from __future__ import annotations

import pytest
from click.testing import CliRunner

from jobs.aggregate.cli import report
from jobs.aggregate.observability import (
    ack_level,
    body_need_keys,
    decide_observability,
    policy_levels,
)

RBAC = "rbac.authorization.k8s.io"


@pytest.mark.parametrize(("key", "level"), [
    (("", "configmaps", "create"), "Metadata"),
    (("", "secrets", "get"), "Metadata"),
    (("", "events", "delete"), "None"),
    (("", "pods", "create"), "RequestResponse"),
    (("apps", "deployments", "get"), "Request"),
    ((RBAC, "clusterrolebindings", "patch"), "RequestResponse"),
    (("crd.projectcalico.org", "ippools", "create"), "Metadata"),
    (("events.k8s.io", "events", "delete"), "Metadata"),
])
def test_ack_level_table(key, level):
    assert ack_level(*key) == level


def test_decide_observability_prefers_the_levels_logged_this_week():
    observed = [{"api_group": "", "resource": "configmaps", "verb": v, "events": 4,
                 "max_level_rank": 1} for v in ("create", "update", "patch")]
    observed.append({"api_group": "", "resource": "services", "verb": "create", "events": 2,
                     "max_level_rank": 3})
    levels = {k: "Metadata" for k in body_need_keys()}  # a policy that logs no bodies at all
    status, basis = decide_observability(observed, levels, "test policy")
    assert status["configmap-credentials"] == "not_observable"
    assert basis["configmap-credentials"].startswith("configmaps create: logged at Metadata (4")
    assert status["nodeport-service"] == "ok"  # one observable need is enough
    assert status["privileged-pod"] == "not_observable"
    assert "test policy level Metadata (no events)" in basis["privileged-pod"]
    assert status["exec"] == "ok" and "exec" not in basis


def test_decide_observability_without_events_or_policy_assumes_ok():
    status, basis = decide_observability([], None)
    assert set(status.values()) == {"ok"}
    assert "unknown level" in basis["wildcard-role"]


@pytest.mark.spark
def test_policy_levels_of_the_embedded_policy_match_the_ack_table(spark):
    keys = body_need_keys()
    levels, source = policy_levels(spark, keys)
    assert source in ("embedded ACK policy", "ACK level table")
    assert levels == {k: ack_level(*k) for k in keys}


def test_report_cli_rejects_a_bad_week_before_starting_spark(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("cluster: c1\ntimezone: UTC\nmasters: [{name: m, source: 'file:///x'}]\n")
    result = CliRunner().invoke(report, ["--config", str(config), "--week", "2026-47"])
    assert result.exit_code == 2 and "YYYY-Www" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster: c1\nbogus: 1\n")
    result = CliRunner().invoke(report, ["--config", str(bad), "--week", "2026-W47"])
    assert result.exit_code == 1 and "bogus" in result.output
