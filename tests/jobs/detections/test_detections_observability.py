from __future__ import annotations

from importlib import resources

import pytest
import yaml

from jobs.detections.observability import (
    body_need_keys,
    decide_observability,
    policy_levels,
    policy_source,
)
from jobs.policy.loader import load_default_policy, load_policy


def _first_rule_level(rules, key):
    """The level of the first rule of a raw policy YAML that matches an ordinary user's
    namespaced resource request; independent of the compiled Columns under test."""
    group, resource, verb = key
    for rule in rules:
        if rule.get("users") or rule.get("userGroups") or rule.get("namespaces"):
            continue
        if rule.get("verbs") and verb not in rule["verbs"]:
            continue
        if "nonResourceURLs" in rule and "resources" not in rule:
            continue
        entries = rule.get("resources")
        if entries is None or any(
            e.get("group", "") == group and (not e.get("resources") or resource in e["resources"])
            for e in entries
        ):
            return rule["level"]
    return "None"


def test_decide_observability_prefers_the_levels_logged_this_week():
    observed = [
        {"api_group": "", "resource": "configmaps", "verb": v, "events": 4, "max_level_rank": 1}
        for v in ("create", "update", "patch")
    ]
    observed.append(
        {
            "api_group": "",
            "resource": "services",
            "verb": "create",
            "events": 2,
            "max_level_rank": 3,
        }
    )
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


def test_policy_source_names_the_file_or_the_embedded_policy(tmp_path):
    assert policy_source(None) == "embedded ACK policy"
    assert policy_source(tmp_path / "p.yaml") == f"policy {tmp_path / 'p.yaml'}"


@pytest.mark.spark
def test_policy_levels_of_the_embedded_policy_follow_its_yaml(spark):
    text = resources.files("jobs.policy").joinpath("ack-policy.yaml").read_text("utf-8")
    rules = yaml.safe_load(text)["rules"]
    keys = body_need_keys()
    levels = policy_levels(spark, keys, load_default_policy())
    assert levels == {k: _first_rule_level(rules, k) for k in keys}
    # what makes configmap-credentials blind under the ACK default, and the rest observable
    assert {levels[k] for k in keys if k[1] == "configmaps"} == {"Metadata"}
    assert {levels[k] for k in keys if k[1] != "configmaps"} == {"RequestResponse"}


@pytest.mark.spark
def test_policy_levels_use_the_policy_given(spark, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
        "- level: Request\n  resources: [{group: '', resources: [services]}]\n"
        "- level: Metadata\n"
    )
    keys = [("", "services", "create"), ("", "configmaps", "create")]
    assert policy_levels(spark, keys, load_policy(path)) == {
        ("", "services", "create"): "Request",
        ("", "configmaps", "create"): "Metadata",
    }
