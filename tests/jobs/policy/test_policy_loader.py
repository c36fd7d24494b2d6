"""Strict policy loading (spec §1.1) and the embedded ACK default (spec §6)."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from jobs.policy.loader import default_policy_text, load_default_policy, load_policy, parse_policy
from jobs.policy.model import GroupResources, Policy, PolicyError, PolicyRule

# The groups of the ACK policy's two "known APIs" rules, as its YAML lists them (read raw,
# so the loader under test is not its own oracle).
ACK_KNOWN_GROUPS = tuple(
    entry.get("group", "")
    for entry in yaml.safe_load(default_policy_text())["rules"][9]["resources"]
)


def _policy(body: str, api_version: str = "audit.k8s.io/v1") -> str:
    return f"apiVersion: {api_version}\nkind: Policy\n" + textwrap.dedent(body)


def test_load_default_policy_is_ack_section_6():
    ack = load_default_policy()
    assert (ack.api_version, ack.omit_stages, ack.omit_managed_fields) == (
        "audit.k8s.io/v1beta1",
        ("RequestReceived",),
        False,
    )
    assert [r.level for r in ack.rules] == ["None"] * 8 + [
        "Metadata",
        "Request",
        "RequestResponse",
        "Metadata",
    ]
    core = GroupResources(group="")
    assert ack.rules[0] == PolicyRule(
        level="None",
        users=("system:kube-proxy",),
        verbs=("watch",),
        resources=(GroupResources(group="", resources=("endpoints", "services")),),
    )
    assert ack.rules[3].user_groups == ("system:nodes",)
    assert ack.rules[4].namespaces == ("kube-system",) and ack.rules[4].verbs == ("get", "update")
    assert ack.rules[6].non_resource_urls == ("/healthz*", "/version", "/swagger*")
    assert ack.rules[8].resources == (
        GroupResources(group="", resources=("secrets", "configmaps")),
        GroupResources(group="authentication.k8s.io", resources=("tokenreviews",)),
    )
    for known_apis in (ack.rules[9], ack.rules[10]):
        assert tuple(g.group for g in known_apis.resources) == ACK_KNOWN_GROUPS
        assert all(g.resources == () for g in known_apis.resources)
    assert ack.rules[9].verbs == ("get", "list", "watch") and ack.rules[10].verbs == ()
    assert ack.rules[11] == PolicyRule(level="Metadata") and core.resources == ()
    assert all(ack.effective_omit_stages(i) == ("RequestReceived",) for i in range(12))


def test_default_policy_text_is_the_ack_yaml():
    text = default_policy_text()
    assert text.startswith("apiVersion: audit.k8s.io/v1beta1")
    assert "# Get repsonses can be large; skip them." in text  # ACK/GCE's own typo, kept verbatim


@pytest.mark.parametrize(
    "api_version", ["audit.k8s.io/v1", "audit.k8s.io/v1beta1", "audit.k8s.io/v1alpha1"]
)
def test_parse_policy_accepts_all_policy_versions(api_version):
    policy = parse_policy(_policy("rules: [{level: Metadata}]", api_version))
    assert policy == Policy(rules=(PolicyRule(level="Metadata"),), api_version=api_version)


def test_parse_policy_rule_fields_and_tri_state():
    text = _policy(
        """\
            omitStages: [Panic]
            omitManagedFields: true
            metadata: {name: ignored}
            rules:
              - level: RequestResponse
                users: [a]
                userGroups: [g]
                verbs: [get]
                namespaces: [""]
                resources: [{group: "*", resources: ["*/status"], resourceNames: [n]}]
                omitStages: [ResponseStarted]
                omitManagedFields: false
              - level: None
                nonResourceURLs: ["*", /metrics]
            """
    )
    policy = parse_policy(text)
    first, second = policy.rules
    assert first.resources == (
        GroupResources(group="*", resources=("*/status",), resource_names=("n",)),
    )
    assert (first.users, first.user_groups, first.verbs, first.namespaces) == (
        ("a",),
        ("g",),
        ("get",),
        ("",),
    )
    assert (first.omit_managed_fields, second.omit_managed_fields, policy.omit_managed_fields) == (
        False,
        None,
        True,
    )
    assert policy.effective_omit_stages(0) == ("ResponseStarted", "Panic")
    assert policy.effective_omit_stages(None) == ("Panic",)
    assert (policy.effective_omit_managed_fields(0), policy.effective_omit_managed_fields(1)) == (
        False,
        True,
    )
    rule_lines = [n for n, content in enumerate(text.splitlines(), 1) if "- level:" in content]
    assert [first.line, second.line] == rule_lines


# name, policy text, marker (the line the error must point at), words the message must contain
ERRORS = [
    (
        "unknown field",
        _policy("rules:\n- level: None\n  userz: [a]\n"),
        "userz",
        ["rules[0].userz", 'unknown field "userz"'],
    ),
    (
        "unknown top field",
        _policy("rulez: []\nrules: [{level: None}]\n"),
        "rulez",
        ["rulez", "unknown field"],
    ),
    (
        "duplicate key",
        _policy("rules:\n- level: None\n  verbs: [get]\n  verbs: [list]\n"),
        "verbs: [list]",
        ["rules[0].verbs", 'duplicate field "verbs"', "first at line 5"],
    ),
    (
        "bad level",
        _policy("rules:\n- level: None\n- level: Everything\n"),
        "Everything",
        ["rules[1].level", 'bad level "Everything"', "RequestResponse"],
    ),
    (
        "empty level",
        _policy("rules:\n- level: ''\n"),
        "level",
        ["rules[0].level", "level is empty"],
    ),
    (
        "null level",
        _policy("rules:\n- level:\n  verbs: [get]\n"),
        "level",
        ["rules[0].level", "level is empty"],
    ),
    (
        "missing level",
        _policy("rules:\n- verbs: [get]\n"),
        "verbs",
        ["rules[0].level", "level is required"],
    ),
    ("no rules", _policy("rules: []\n"), "rules", ["rules", "at least one rule"]),
    (
        "rules absent",
        _policy("omitStages: [Panic]\n"),
        "apiVersion",
        ["rules", "at least one rule"],
    ),
    (
        "bad rule omitStages",
        _policy("rules:\n- level: None\n  omitStages: [Panic, ResponseDone]\n"),
        "ResponseDone",
        ["rules[0].omitStages[1]", 'unknown stage "ResponseDone"'],
    ),
    (
        "bad policy omitStages",
        _policy("omitStages: [received]\nrules: [{level: None}]\n"),
        "received",
        ["omitStages[0]", 'unknown stage "received"'],
    ),
    (
        "urls with resources",
        _policy("rules:\n- level: None\n  resources: [{group: ''}]\n  nonResourceURLs: [/x]\n"),
        "nonResourceURLs",
        ["rules[0].nonResourceURLs", "cannot be combined with resources or namespaces"],
    ),
    (
        "urls with namespaces",
        _policy("rules:\n- level: None\n  namespaces: [a]\n  nonResourceURLs: [/x]\n"),
        "nonResourceURLs",
        ["rules[0].nonResourceURLs", "cannot be combined"],
    ),
    (
        "url without slash",
        _policy("rules:\n- level: None\n  nonResourceURLs:\n  - /ok\n  - healthz\n"),
        "- healthz",
        ["rules[0].nonResourceURLs[1]", '"healthz" must start with "/"'],
    ),
    (
        "star not final",
        _policy("rules:\n- level: None\n  nonResourceURLs: ['/api/*/x']\n"),
        "/api/*/x",
        ["rules[0].nonResourceURLs[0]", "final character"],
    ),
    (
        "resourceNames without resources",
        _policy("rules:\n- level: None\n  resources:\n  - group: apps\n    resourceNames: [a]\n"),
        "resourceNames",
        ["rules[0].resources[0].resourceNames", "requires at least one entry in resources"],
    ),
    (
        "bad group",
        _policy("rules:\n- level: None\n  resources:\n  - group: Apps_v1\n"),
        "Apps_v1",
        ["rules[0].resources[0].group", 'bad group "Apps_v1"'],
    ),
    (
        "list expected",
        _policy("rules:\n- level: None\n  users: kubelet\n"),
        "users",
        ["rules[0].users", "must be a list"],
    ),
    (
        "string expected",
        _policy("rules:\n- level: None\n  verbs: [get, 7]\n"),
        "verbs",
        ["rules[0].verbs[1]", "must be a string"],
    ),
    (
        "bool expected",
        _policy("omitManagedFields: maybe\nrules: [{level: None}]\n"),
        "maybe",
        ["omitManagedFields", "must be true or false"],
    ),
    (
        "bad apiVersion",
        _policy("rules: [{level: None}]\n", "audit.k8s.io/v2"),
        "apiVersion",
        ["apiVersion", "audit.k8s.io/v2"],
    ),
    (
        "bad kind",
        "apiVersion: audit.k8s.io/v1\nkind: Pollicy\nrules: [{level: None}]\n",
        "kind",
        ["kind", '"Pollicy"'],
    ),
    ("invalid yaml", _policy("rules:\n- level: None\n  verbs: [get\n"), None, ["invalid YAML"]),
    ("not a mapping", "- just a list\n", "just", ["must be a mapping"]),
]


@pytest.mark.parametrize(
    ("text", "marker", "words"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_parse_policy_error_names_place(text, marker, words):
    with pytest.raises(PolicyError) as excinfo:
        parse_policy(text, source="p.yaml")
    message = str(excinfo.value)
    for word in words:
        assert word in message
    if marker is not None:
        line = next(n for n, content in enumerate(text.splitlines(), 1) if marker in content)
        assert message.startswith(f"p.yaml:{line}: ")


def test_parse_policy_error_is_value_error():
    assert issubclass(PolicyError, ValueError)
    with pytest.raises(ValueError, match="empty policy file"):
        parse_policy("")


def test_load_policy_file_names_path(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(_policy("rules: [{level: Request}]\n"))
    bad.write_text(_policy("rules:\n- level: Request\n  verbs: get\n"))
    assert load_policy(good).rules == (PolicyRule(level="Request"),)
    assert load_policy(good).source == str(good) and len(load_policy(good).sha256 or "") == 64
    with pytest.raises(PolicyError, match=rf"^{bad}:5: rules\[0\]\.verbs: must be a list"):
        load_policy(bad)
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.yaml")
