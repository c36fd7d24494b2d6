"""An adversarial addition to a synth week: a scan of many requests from many public IPs.

``add_scan(master_dir, requests=1_000_000, ips=1000)`` writes one rotated audit file into a
synth master's folder: one ResponseComplete event per request, spread over ISO week 2026-W47
(UTC), from ``ips`` public addresses, 90% failing (401/403/404), probing many resources and
paths with scanner user agents. Deterministic (seeded).

    python bench/adversarial.py MASTER_DIR [--requests 1000000] [--ips 1000]
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

START = datetime(2026, 11, 16, tzinfo=UTC)
RESOURCES = (
    "secrets",
    "pods",
    "configmaps",
    "serviceaccounts",
    "nodes",
    "namespaces",
    "clusterroles",
    "deployments",
    "services",
    "persistentvolumes",
)
AGENTS = (
    "python-requests/2.31.0",
    "curl/8.4.0",
    "Go-http-client/1.1",
    "masscan/1.3",
    "zgrab/0.x",
    "Mozilla/5.0 zgrab/0.x",
    "kube-hunter/0.6.8",
)
NAMESPACES = ("default", "kube-system", "prod", "staging", "monitoring")


def _ip(i: int) -> str:
    # public unicast ranges, none private, reserved or documentation
    return f"{45 + i % 7}.{(i * 37) % 251 + 1}.{(i * 13) % 253 + 1}.{i % 250 + 2}"


def scan_lines(requests: int, ips: int, seed: int = 15):
    """Yield the scan's audit lines, in time order."""
    rnd = random.Random(seed)
    step = timedelta(days=7) / requests
    addresses = [_ip(i) for i in range(ips)]
    for n in range(requests):
        ts = START + step * n
        ip = addresses[rnd.randrange(ips)]
        resource = RESOURCES[rnd.randrange(len(RESOURCES))]
        ns = NAMESPACES[rnd.randrange(len(NAMESPACES))]
        verb = "list" if rnd.random() < 0.5 else "get"
        fail = rnd.random() < 0.9
        code = rnd.choice((401, 403, 403, 404)) if fail else 200
        user = (
            {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
            if code == 401 or rnd.random() < 0.5
            else {"username": f"scanner-{rnd.randrange(50)}", "groups": ["system:authenticated"]}
        )
        name = None if verb == "list" else f"x{rnd.randrange(100000)}"
        uri = f"/api/v1/namespaces/{ns}/{resource}" + (f"/{name}" if name else "")
        obj = {"resource": resource, "namespace": ns, "apiVersion": "v1"}
        if name:
            obj["name"] = name
        stamp = ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
            "stage": "ResponseComplete",
            "requestURI": uri,
            "verb": verb,
            "user": user,
            "sourceIPs": [ip],
            "userAgent": AGENTS[rnd.randrange(len(AGENTS))],
            "objectRef": obj,
            "responseStatus": {"metadata": {}, "code": code},
            "requestReceivedTimestamp": stamp,
            "stageTimestamp": stamp,
            "annotations": {"authorization.k8s.io/decision": "forbid" if fail else "allow"},
        }
        yield json.dumps(event, separators=(",", ":")) + "\n"


def add_scan(master_dir: Path, requests: int = 1_000_000, ips: int = 1000) -> Path:
    """Write the scan as a rotated backup file in ``master_dir``; return its path."""
    path = master_dir / "kubernetes-2026-11-19T12-00-00.000.audit"
    with open(path, "w") as fh:
        fh.writelines(scan_lines(requests, ips))
    return path


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("master_dir", type=Path)
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--ips", type=int, default=1000)
    a = ap.parse_args()
    print(add_scan(a.master_dir, a.requests, a.ips))
