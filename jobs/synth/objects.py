"""Kubernetes object bodies (``objects.yaml``) as ``%``-format templates, and the watch query."""

from __future__ import annotations

from functools import cache
from typing import Any

from jobs.synth.actors import cluster
from jobs.synth.engine import Generator, load_table
from jobs.synth.render import template

APPS = (
    ("prod", "web", "7d9f8c6b5"),
    ("prod", "api", "5c8b7d9f4"),
    ("prod", "worker", "6f5d8b7c9"),
    ("staging", "web", "84c6d5b7f"),
    ("staging", "api", "7b9c4d6e8"),
    ("monitoring", "grafana", "58d9c7b6f"),
)
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery rand.String alphabet


@cache
def _bodies() -> dict[str, Any]:
    return load_table("objects.yaml")


def _fill(obj: Any, fixed: dict[str, str]) -> Any:
    if isinstance(obj, dict):
        return {k: _fill(v, fixed) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fill(v, fixed) for v in obj]
    if isinstance(obj, str) and "@@" in obj:
        for name, value in fixed.items():
            obj = obj.replace(f"@@{name}@@", value)
    return obj


def object_templates(cluster_created: str) -> dict[str, str]:
    """Every body of ``objects.yaml`` with the run's fixed holes filled, as ``%`` templates.

    Args:
        cluster_created: creationTimestamp of the cluster's long-lived objects.

    Returns:
        Template name to ``%(hole)s`` format string.
    """
    c = cluster()
    fixed = {
        "created": cluster_created,
        "registry": c["registry"],
        "kubernetes_version": c["kubernetes_version"],
    }
    return {name: template(_fill(body, fixed)) for name, body in _bodies().items()}


def random_suffix(g: Generator) -> str:
    """The five random characters of a generated pod name.

    Args:
        g: the generator.

    Returns:
        The suffix.
    """
    draw = g.rng.random
    return "".join(_NAME_CHARS[int(draw() * 27)] for _ in range(5))


def pod_name(g: Generator, app: str, pod_template_hash: str) -> str:
    """A Deployment's pod name: ``<app>-<hash>-<5 random>``.

    Args:
        g: the generator.
        app: the app (Deployment) name.
        pod_template_hash: the ReplicaSet's hash.

    Returns:
        The pod name.
    """
    return f"{app}-{pod_template_hash}-" + random_suffix(g)


def watch_query(g: Generator, selector: str = "") -> tuple[str, int]:
    """A client-go reflector watch query (timeout 5-10 min).

    Args:
        g: the generator.
        selector: an URL-encoded field selector ("" for none).

    Returns:
        The query and its timeoutSeconds.
    """
    secs = 300 + int(g.rng.random() * 300)
    field_selector = f"&fieldSelector={selector}" if selector else ""
    query = (
        f"allowWatchBookmarks=true{field_selector}&resourceVersion={g.next_resource_version()}"
        f"&timeout={secs // 60}m{secs % 60}s&timeoutSeconds={secs}&watch=true"
    )
    return query, secs
