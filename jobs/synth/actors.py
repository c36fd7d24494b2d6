"""The synthetic cluster's people and fixed identities, loaded from ``actors.yaml``."""

from __future__ import annotations

import random
from functools import cache
from typing import Any

from jobs.synth.engine import Actor, go_json, load_table, new_uuid
from jobs.synth.render import ALLOW_EMPTY, allow_annotations, rbac_reason

ADMIN = "kubernetes-admin"
AUTHENTICATED = ["system:authenticated"]
NODE_GROUPS = ["system:nodes", "system:authenticated"]


@cache
def actors_table() -> dict[str, Any]:
    """``actors.yaml``, parsed once.

    Returns:
        The parsed document.
    """
    return load_table("actors.yaml")


def cluster() -> dict[str, Any]:
    """The cluster section: versions, registry, nodes, CI runner.

    Returns:
        The mapping.
    """
    section: dict[str, Any] = actors_table()["cluster"]
    return section


def node_names() -> tuple[str, ...]:
    """Names of the worker nodes.

    Returns:
        Node names, in table order.
    """
    return tuple(n["name"] for n in cluster()["nodes"])


def node_ips() -> tuple[str, ...]:
    """InternalIPs of the worker nodes.

    Returns:
        IPs, in table order.
    """
    return tuple(n["ip"] for n in cluster()["nodes"])


def component_user_agent(component: str, suffix: str = "") -> str:
    """The user agent of a Kubernetes component built from the cluster's version (JSON).

    Args:
        component: binary name (``kubelet``, ``kube-scheduler``, ...).
        suffix: what client-go appends (``/leader-election``, ...).

    Returns:
        The JSON string.
    """
    c = cluster()
    return go_json(
        f"{component}/{c['kubernetes_version']} (linux/amd64) "
        f"kubernetes/{c['kubernetes_commit']}{suffix}"
    )


def service_account_user(namespace: str, name: str, uid: str, pod: str = "", node: str = "") -> str:
    """The user of a service-account token (JSON); pod-bound tokens carry the pod's extra.

    Args:
        namespace: service account namespace.
        name: service account name.
        uid: service account uid.
        pod: the pod a bound token belongs to ("" for a legacy token).
        node: the pod's node.

    Returns:
        The JSON object.
    """
    user: dict[str, Any] = {
        "username": f"system:serviceaccount:{namespace}:{name}",
        "uid": uid,
        "groups": [
            "system:serviceaccounts",
            f"system:serviceaccounts:{namespace}",
            "system:authenticated",
        ],
    }
    if pod:
        # the ids of a pod's token are fixed by the pod, not drawn from the run's random source
        ids = random.Random(f"{namespace}/{pod}")  # noqa: S311 - fixed ids, not security
        user["extra"] = {
            "authentication.kubernetes.io/credential-id": [f"JTI={new_uuid(ids)}"],
            "authentication.kubernetes.io/node-name": [node],
            "authentication.kubernetes.io/node-uid": [new_uuid(ids)],
            "authentication.kubernetes.io/pod-name": [pod],
            "authentication.kubernetes.io/pod-uid": [new_uuid(ids)],
        }
    return go_json(user)


def service_account_reason(binding: str, namespace: str, name: str) -> str:
    """RBAC reason of a ClusterRoleBinding named after its ClusterRole, to a service account.

    Args:
        binding: binding and ClusterRole name.
        namespace: service account namespace.
        name: service account name.

    Returns:
        The reason text.
    """
    return rbac_reason(
        "ClusterRoleBinding", binding, binding, "ServiceAccount", f"{name}/{namespace}"
    )


def controller_actor(name: str, master_ip: str) -> Actor:
    """A kube-controller-manager controller acting as its own kube-system service account.

    Its uid is fixed by its name, so the background and the planted incidents show the same
    service account.

    Args:
        name: the controller (``deployment-controller``, ...).
        master_ip: the master whose controller-manager holds the lease.

    Returns:
        The actor.
    """
    uid = new_uuid(random.Random(f"serviceaccount:kube-system/{name}"))  # noqa: S311 - fixed id
    return Actor(
        name,
        service_account_user("kube-system", name, uid),
        component_user_agent(
            "kube-controller-manager", f"/system:serviceaccount:kube-system:{name}"
        ),
        (go_json([master_ip]),),
        allow_annotations(service_account_reason(f"system:controller:{name}", "kube-system", name)),
    )


def _human(
    key: str, identity: str, source_ips: tuple[str, ...], user_agents: list[str]
) -> list[Actor]:
    """One actor per user agent of a human identity of ``actors.yaml``."""
    who = actors_table()["humans"][identity]
    person = who["person"]
    reason = rbac_reason(
        "ClusterRoleBinding", f"{person}-clusterrolebinding", who["role"], "User", person
    )
    user_json = go_json({"username": who["username"], "groups": who.get("groups", AUTHENTICATED)})
    allow = allow_annotations(reason)
    return [
        Actor(key, user_json, go_json(ua), source_ips, allow, system=False) for ua in user_agents
    ]


def background_humans() -> list[tuple[float, Actor]]:
    """The humans of the background traffic with their share of it.

    Returns:
        ``(weight, actor)`` pairs; a person with two user agents is two actors.
    """
    out: list[tuple[float, Actor]] = []
    for row in actors_table()["background_humans"]:
        ips = tuple(go_json(alternative) for alternative in row["source_ips"])
        actors = _human(row["identity"], row["identity"], ips, row["user_agents"])
        out += [(row["weight"] / len(actors), a) for a in actors]
    return out


@cache
def planted_actor(key: str) -> Actor:
    """An actor of the planted incidents, by its ``actors.yaml`` key.

    Args:
        key: the key under ``planted``.

    Returns:
        The actor.

    Raises:
        KeyError: no such actor.
    """
    row = actors_table()["planted"][key]
    if "controller" in row:
        return controller_actor(row["controller"], row["source_ips"][-1])
    ips = (go_json(row["source_ips"]),)
    if "identity" in row:
        return _human(key, row["identity"], ips, [row["user_agent"]])[0]
    if "service_account" in row:
        sa = row["service_account"]
        user_json = service_account_user(
            sa["namespace"], sa["name"], sa["uid"], sa["pod"], sa["node"]
        )
    else:
        user_json = go_json(row["user"])
    allow = allow_annotations(rbac_reason(*row["rbac"])) if "rbac" in row else ALLOW_EMPTY
    return Actor(key, user_json, go_json(row["user_agent"]), ips, allow)
