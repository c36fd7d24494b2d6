"""The planted incidents: found exactly, by detections written on the raw events."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from collections import Counter

from week_reader import (
    AUTH_FAILURES,
    DETECTION_IDS,
    LEVEL_RANK,
    LONG_SUBS,
    PLANTED_ROWS,
    ack_level,
    detect,
    exec_cmd,
    expected,
    is_human,
    is_public,
    object_ref,
    parse_ts,
    status_code,
    user_name,
)

from jobs.synth import PLANTED, planted_markdown
from jobs.synth.incidents import background_matches


def test_synth_week_levels_and_bodies_match_ack_policy_except_planted_drift(events: list) -> None:
    drift = [p for p in PLANTED_ROWS if p["id"] == "policy-drift-sensitive-body"]
    assert len(drift) == 1
    mismatches = []
    for master, e in events:
        level = ack_level(e)
        if level != e["level"]:
            mismatches.append((master, e))
            continue
        verb, sub = e["verb"], object_ref(e).get("subresource")
        if "requestObject" in e:
            assert verb in ("create", "update", "patch", "delete")
            assert LEVEL_RANK[e["level"]] >= LEVEL_RANK["Request"]
        if "responseObject" in e:
            assert e["level"] == "RequestResponse"
            assert verb in ("get", "list", "create", "update", "patch", "delete")
            assert sub not in LONG_SUBS
        if (
            e["level"] == "RequestResponse"
            and verb in ("create", "update", "patch")
            and sub not in LONG_SUBS
            and status_code(e) < 400
            and e["stage"] == "ResponseComplete"
        ):
            assert "requestObject" in e and "responseObject" in e
    assert len(mismatches) == drift[0]["count"] == 5
    for master, e in mismatches:
        assert master == drift[0]["master"]
        assert e["objectRef"]["resource"] == "secrets" and e["level"] == "RequestResponse"
        assert e["responseObject"]["kind"] == "Secret" and e["responseObject"]["data"]
        assert ack_level(e) == "Metadata"


def test_synth_week_detections_find_exactly_the_planted_incidents(events: list) -> None:
    hits = detect(events)
    for det in DETECTION_IDS:
        if det == AUTH_FAILURES:
            continue
        want = expected(det)
        got = hits.get(det, {})
        assert len(got) == sum(p["count"] for p in want), det
        # 401s carry no user at all; the scanner's identified requests are system:anonymous
        users = {u for p in want for u in p["usernames"]}
        assert {user_name(e) for e in got.values()} - {""} == users, det
    assert set(hits) <= set(DETECTION_IDS)
    assert len(hits) >= 35


def test_synth_week_auth_failures_are_the_planted_plus_the_reported_background(
    week: tuple, events: list
) -> None:
    _, summary = week
    got = detect(events)[AUTH_FAILURES]
    planted = sum(p["auth_failures"] for p in PLANTED_ROWS)
    background = summary["background_detections"][AUTH_FAILURES]
    assert planted == 40 and background > 0
    assert len(got) == planted + background
    assert [p["auth_failures"] for p in PLANTED] == [p["auth_failures"] for p in PLANTED_ROWS]
    # the background's: the expired CI token, the stale kubeconfig, kube-state-metrics, the dev
    failing = [p for p in PLANTED_ROWS if p["auth_failures"]]
    assert {p["key"] for p in failing} == {"scanner", "secret-denied", "denied-burst"}
    scanner_ip = next(p["source_ip"] for p in failing if p["key"] == "scanner")
    intern = next(p["username"] for p in failing if p["key"] == "denied-burst")
    rest = [e for e in got.values() if e["sourceIPs"][-1] != scanner_ip and user_name(e) != intern]
    assert len(rest) == background
    assert {e["sourceIPs"][-1] for e in rest if status_code(e) == 401} <= {"10.0.3.15", "10.0.2.5"}
    denied = {user_name(e) for e in rest if status_code(e) == 403}
    dev = next(p["username"] for p in PLANTED_ROWS if p["key"] == "exec-benign")
    assert denied <= {"system:serviceaccount:monitoring:kube-state-metrics", dev}


def test_synth_week_privileged_deployment_is_one_workload_from_a_person_and_controllers(
    events: list,
) -> None:
    hits = detect(events)["privileged-pod"].values()
    mine = [e for e in hits if "web-priv" in json.dumps(e["requestObject"])]
    assert len(mine) == next(
        p["count"] for p in PLANTED_ROWS if p["key"] == "privileged-deployment"
    )
    assert sorted(object_ref(e)["resource"] for e in mine) == [
        "deployments", "pods", "pods", "replicasets"
    ]  # fmt: skip
    by_kind = {e["requestObject"]["kind"]: e for e in mine}
    owner = by_kind["ReplicaSet"]["requestObject"]["metadata"]["ownerReferences"][0]
    assert owner["uid"] == by_kind["Deployment"]["responseObject"]["metadata"]["uid"]
    rs_uid = by_kind["ReplicaSet"]["responseObject"]["metadata"]["uid"]
    pods = [e for e in mine if object_ref(e)["resource"] == "pods"]
    for pod in pods:
        assert "name" not in pod["objectRef"]
        meta = pod["requestObject"]["metadata"]
        assert meta["ownerReferences"][0]["uid"] == rs_uid
        assert pod["responseObject"]["metadata"]["name"].startswith(meta["generateName"])
    assert {user_name(e) for e in pods} == {
        "system:serviceaccount:kube-system:replicaset-controller"
    }
    # the planted controllers are the background's (same service account uid)
    uids = {
        user_name(e): e["user"]["uid"]
        for _, e in events
        if user_name(e).endswith(("-controller", ":replicaset-controller"))
    }
    for e in mine:
        if user_name(e).startswith("system:"):
            assert e["user"]["uid"] == uids[user_name(e)]


def test_synth_week_planted_details_are_visible_in_the_events(events: list) -> None:
    hits = detect(events)
    execs = hits["exec"].values()
    assert {e["verb"] for e in execs} == {"create", "get"}
    shadow = [e for e in execs if "/etc/shadow" in " ".join(exec_cmd(e))]
    assert [e["requestURI"] for e in shadow] == [
        "/api/v1/namespaces/prod/pods/web-7d9f/exec?command=sh&command=-c&command=cat%20%2Fetc"
        "%2Fshadow&container=web&stdin=true&stdout=true&tty=true"
    ]
    assert any("169.254.169.254" in " ".join(exec_cmd(e)) for e in execs)
    for e in execs:
        if user_name(e) == "kubernetes-admin":
            person = next(p["person"] for p in PLANTED_ROWS if p["key"] == "exec-imds")
            assert e["annotations"]["authorization.k8s.io/reason"].endswith(f'to User "{person}"')
            assert e["user"]["groups"] == ["system:masters", "system:authenticated"]
    imp = list(hits["impersonation"].values())
    assert {e["impersonatedUser"]["username"] for e in imp} == {
        "system:serviceaccount:prod:deployer"
    }
    assert {user_name(e) for e in imp} == {"kubernetes-admin"}
    token = next(iter(hits["token-request"].values()))
    assert token["level"] == "RequestResponse" and token["responseObject"]["status"]["token"]
    scanner = next(p for p in PLANTED_ROWS if p["id"] == "public-ip-failure-rate")
    mine = [e for _, e in events if e["sourceIPs"][-1] == scanner["source_ip"]]
    assert len({e["auditID"] for e in mine}) == scanner["count"] == 30
    assert sum(status_code(e) >= 400 for e in mine) == sum(c >= 400 for c in scanner["codes"]) == 25
    assert Counter(status_code(e) for e in mine) == {401: 15, 403: 10, 200: 5}
    anon = hits["anonymous-allowed"].values()
    assert {e["requestURI"].split("?")[0] for e in anon} == {"/api/v1/namespaces/default/pods"}
    assert all(e["user"]["groups"] == ["system:unauthenticated"] for e in anon)
    burst = next(p for p in PLANTED_ROWS if p["id"] == "denied-burst")
    assert len({e["requestURI"] for e in hits["denied-burst"].values()}) == burst["count"]
    enum = next(p for p in PLANTED if p["key"] == "secret-day")
    assert (
        len(
            {
                e["objectRef"]["name"]
                for e in hits["secret-enumeration"].values()
                if e["verb"] == "get"
            }
        )
        == enum["distinct_secrets"]
        == 3
    )
    crd = [
        e
        for _, e in events
        if object_ref(e).get("apiGroup") == "crd.projectcalico.org"
        and is_human(e)
        and e["verb"] in ("create", "delete")
    ]
    assert sorted(e["verb"] for e in crd) == ["create", "delete"]
    # configmap-credentials is planted but not observable: the ACK policy logs configmaps at
    # Metadata, so the request exists without its body
    cm = [
        e
        for _, e in events
        if object_ref(e).get("resource") == "configmaps"
        and e["verb"] == "create"
        and object_ref(e).get("name") == "app-env"
    ]
    assert len(cm) == 1 and cm[0]["level"] == "Metadata" and "requestObject" not in cm[0]


def test_synth_week_mix_is_mostly_system_identities(events: list) -> None:
    users = Counter(user_name(e) for _, e in events)
    system = sum(n for u, n in users.items() if u.startswith("system:"))
    assert system / len(events) > 0.80
    humans = {u for u in users if u and not u.startswith("system:")}
    assert "kubernetes-admin" in humans
    assert sum(bool(re.fullmatch(r"27\d{16}", u)) for u in humans) >= 4
    assert any(u.startswith("system:node:") for u in users)
    assert any(u.startswith("system:serviceaccount:kube-system:") for u in users)
    ips = {ip for _, e in events for ip in e["sourceIPs"]}
    assert any(":" in ip and is_public(ip) for ip in ips)  # public IPv6
    assert any(ipaddress.ip_address(ip).is_private for ip in ips)
    assert any(len(e["sourceIPs"]) == 2 for _, e in events)
    groups = {object_ref(e).get("apiGroup") for _, e in events}
    assert {
        "crd.projectcalico.org",
        "monitoring.coreos.com",
        "cert-manager.io",
        "coordination.k8s.io",
    } <= groups


def test_synth_week_humans_follow_office_hours(events: list) -> None:
    by_hour: Counter[int] = Counter()
    for _, e in events:
        if is_human(e):
            by_hour[(parse_ts(e["requestReceivedTimestamp"]) + dt.timedelta(hours=8)).hour] += 1
    day = sum(by_hour[h] for h in (9, 10, 11, 14, 15, 16))
    night = sum(by_hour[h] for h in (1, 2, 3, 4, 5, 6))
    assert day > 10 * max(night, 1)


def test_planted_table_is_consistent_and_rendered() -> None:
    md = planted_markdown()
    table = [r for r in md.splitlines() if r.startswith("|")]
    background = background_matches()
    assert [b["detection"] for b in background] == [AUTH_FAILURES]
    assert len(table) == len(PLANTED) + 2 + len(background)
    assert table[-1].startswith(f"| {AUTH_FAILURES} | see the synth summary |")
    assert "matches no detection" not in md
    # impersonation: the events name no person, so neither does the table
    imp = next(p for p in PLANTED if p["key"] == "impersonate")
    assert imp["attributed_to"] == "" and "not attributable" in imp["note"]
    assert "disallowed-user" in imp["also"]
    assert [(p["key"], p["count"]) for p in PLANTED] == [
        (p["key"], p["count"]) for p in PLANTED_ROWS
    ]
    for p in PLANTED:
        assert p["count"] >= 1 and p["lines"] >= p["count"]
        assert f"| {p['id']} | {p['count']} |" in md
    ids = {p["id"] for p in PLANTED}
    assert ids - set(DETECTION_IDS) == {"crd-operations", "policy-drift-sensitive-body"}
    # one row per new or changed detection of issue 11
    assert {
        "role-write-privileges", "serviceaccount-kube-namespace", "disallowed-user",
        "disallowed-image", "disallowed-namespace",
    } <= ids  # fmt: skip
    assert sum(p["id"] == "configmap-credentials" and not p["observable"] for p in PLANTED) == 2
