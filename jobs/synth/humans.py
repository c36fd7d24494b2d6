"""Request templates of the humans of the background traffic (kubectl and k9s).

Every op takes the actor drawn for it; the intern (``cs:restricted``) falls back to reads.
"""

from __future__ import annotations

from collections.abc import Callable

from jobs.synth.engine import MICROS, OK_STATUS, Actor, Call, Generator
from jobs.synth.objects import APPS, pod_name
from jobs.synth.render import (
    FORBID,
    conflict,
    forbidden_status,
    object_failure_status,
    object_ref_json,
    status_json,
    uri_json,
)

HumanOp = Callable[[int, int, Actor], None]
_NAMESPACES = ("prod", "prod", "staging", "monitoring", "default")
_LISTED = (
    ("", "pods"),
    ("", "pods"),
    ("apps", "deployments"),
    ("", "services"),
    ("", "configmaps"),
    ("batch", "jobs"),
)
_CUSTOM = (
    ("monitoring.coreos.com", "servicemonitors", "monitoring"),
    ("monitoring.coreos.com", "prometheusrules", "monitoring"),
    ("cert-manager.io", "certificates", "prod"),
    ("crd.projectcalico.org", "ippools", ""),
    ("crd.projectcalico.org", "felixconfigurations", ""),
)
_CUSTOM_NAMES = {
    "servicemonitors": "web",
    "prometheusrules": "web-slo",
    "certificates": "web-tls",
    "ippools": "default-ipv4-ippool",
    "felixconfigurations": "default",
}
_APPLY = "fieldManager=kubectl-client-side-apply"


def _base(group: str) -> str:
    return f"/apis/{group}/v1" if group else "/api/v1"


class HumanTraffic:
    """Discovery, lists, gets, logs, watches, rollouts, custom resources and applies."""

    def __init__(self, g: Generator, templates: dict[str, str], dev_username: str) -> None:
        """Draw the Deployments' uids.

        Args:
            g: the generator.
            templates: :func:`jobs.synth.objects.object_templates`.
            dev_username: the developer's username (``cs:dev`` is denied in kube-system).
        """
        self.g, self.rng, self.t = g, g.rng, templates
        self.dev_username = dev_username
        self.deployment_uids = {(ns, app): g.new_id() for ns, app, _ in APPS}

    def _namespace(self, a: Actor) -> str:
        return "staging" if a.name == "intern" else _NAMESPACES[int(self.rng.random() * 5)]

    def discovery(self, t: int, m: int, a: Actor) -> None:
        """The discovery requests of kubectl."""
        path = ("/api", "/apis", "/openapi/v2")[int(self.rng.random() * 3)]
        self.g.request(m, t, a, Call("Metadata", "get", uri_json(path, "timeout=32s"), ""))

    def list(self, t: int, m: int, a: Actor) -> None:
        """``kubectl get <kind>``; the developer sometimes tries kube-system and is denied."""
        rng = self.rng
        ns = self._namespace(a)
        group, resource = _LISTED[int(rng.random() * 6)]
        if a.name == "dev" and rng.random() < 0.02:
            call = Call(
                "Request",
                "list",
                uri_json("/api/v1/namespaces/kube-system/pods", "limit=500"),
                object_ref_json("pods", "kube-system"),
                forbidden_status(self.dev_username, "list", "pods", "", "kube-system"),
                FORBID,
            )
            self.g.request(m, t, a, call)
            return
        call = Call(
            "Metadata" if resource == "configmaps" else "Request",
            "list",
            uri_json(f"{_base(group)}/namespaces/{ns}/{resource}", "limit=500"),
            object_ref_json(resource, ns, group=group),
            duration_us=3000 + int(rng.random() * 40_000),
        )
        self.g.request(m, t, a, call)

    def get(self, t: int, m: int, a: Actor) -> None:
        """``kubectl get <kind> <name>``; some names do not exist (404)."""
        rng = self.rng
        ns = self._namespace(a)
        _, app, h = APPS[int(rng.random() * len(APPS))]
        kind = int(rng.random() * 3)
        if kind == 0:
            group, resource, name = "", "pods", pod_name(self.g, app, h)
        elif kind == 1:
            group, resource, name = "apps", "deployments", app
        else:
            group, resource, name = "", "configmaps", f"{app}-config"
        found = rng.random() >= 0.06
        call = Call(
            "Metadata" if resource == "configmaps" else "Request",
            "get",
            uri_json(f"{_base(group)}/namespaces/{ns}/{resource}/{name}"),
            object_ref_json(resource, ns, name, group),
            OK_STATUS if found else object_failure_status(404, "NotFound", resource, group, name),
        )
        self.g.request(m, t, a, call)

    def logs(self, t: int, m: int, a: Actor) -> None:
        """``kubectl logs`` (some with ``-f``, held open for minutes)."""
        rng = self.rng
        ns, app, h = APPS[int(rng.random() * len(APPS))]
        name = pod_name(self.g, app, h)
        follow = rng.random() < 0.3
        if follow:
            query = f"container={app}&follow=true&tailLines=200"
            duration = (30 + int(rng.random() * 600)) * MICROS
        else:
            query = f"container={app}&tailLines=500"
            duration = 20_000 + int(rng.random() * 300_000)
        call = Call(
            "Request",
            "get",
            uri_json(f"/api/v1/namespaces/{ns}/pods/{name}/log", query),
            object_ref_json("pods", ns, name, subresource="log"),
            duration_us=duration,
            started_status_json=OK_STATUS,
        )
        self.g.request(m, t, a, call)

    def watch_pods(self, t: int, m: int, a: Actor) -> None:
        """``kubectl get pods -w``."""
        ns = self._namespace(a)
        query = f"resourceVersion={self.g.next_resource_version()}&watch=true"
        call = Call(
            "Request",
            "watch",
            uri_json(f"/api/v1/namespaces/{ns}/pods", query),
            object_ref_json("pods", ns),
            duration_us=(20 + int(self.rng.random() * 900)) * MICROS,
            started_status_json=OK_STATUS,
        )
        self.g.request(m, t, a, call)

    def rollout(self, t: int, m: int, a: Actor) -> None:
        """``kubectl rollout restart`` or ``kubectl scale`` (some scales conflict)."""
        if a.name == "intern":
            return self.list(t, m, a)
        rng, g = self.rng, self.g
        ns, app, _ = APPS[int(rng.random() * 5)]
        holes = {
            "app": app,
            "ns": ns,
            "uid": self.deployment_uids[ns, app],
            "rv": g.next_resource_version(),
            "at": g.micro_timestamp(t)[:19] + "+08:00",
            "n": "",
        }
        path = f"/apis/apps/v1/namespaces/{ns}/deployments/{app}"
        if rng.random() < 0.6:
            call = Call(
                "RequestResponse",
                "patch",
                uri_json(path, "fieldManager=kubectl-rollout"),
                object_ref_json("deployments", ns, app, "apps"),
                request_object_json=self.t["rollout-restart-patch"] % holes,
                response_object_json=self.t["deployment-restarted"] % holes,
            )
            g.request(m, t, a, call)
            return None
        replicas = holes["n"] = str(2 + int(rng.random() * 5))
        old = holes["rv"] = str(g.resource_version - 3 - int(rng.random() * 500))

        def scale_body() -> str:
            # the template holds every hole as a string; replicas is a number
            return (self.t["scale"] % holes).replace(
                f'"replicas":"{replicas}"', f'"replicas":{replicas}'
            )

        body = scale_body()
        ref = object_ref_json(
            "deployments",
            ns,
            app,
            "apps",
            subresource="scale",
            uid=holes["uid"],
            resource_version=old,
        )
        if rng.random() < 0.15:
            status, response = conflict("deployments", "apps", app)
        else:
            holes["rv"] = g.next_resource_version()
            status, response = OK_STATUS, scale_body()
        call = Call(
            "RequestResponse",
            "update",
            uri_json(f"{path}/scale"),
            ref,
            status,
            request_object_json=body,
            response_object_json=response,
        )
        g.request(m, t, a, call)
        return None

    def custom_resources(self, t: int, m: int, a: Actor) -> None:
        """Custom resources: lists and gets, applies (some conflict), certificate creates."""
        rng = self.rng
        group, resource, ns = _CUSTOM[int(rng.random() * len(_CUSTOM))]
        base = f"/apis/{group}/v1" + (f"/namespaces/{ns}" if ns else "")
        r = rng.random()
        name = _CUSTOM_NAMES[resource]
        if r < 0.45 or a.name == "intern":
            ref = object_ref_json(resource, ns, group=group)
            call = Call("Metadata", "list", uri_json(f"{base}/{resource}", "limit=500"), ref)
        elif r < 0.75:
            ref = object_ref_json(resource, ns, name, group)
            call = Call("Metadata", "get", uri_json(f"{base}/{resource}/{name}"), ref)
        elif r < 0.92 and resource in ("prometheusrules", "servicemonitors", "certificates"):
            status = conflict(resource, group, name)[0] if rng.random() < 0.1 else OK_STATUS
            uri = uri_json(f"{base}/{resource}/{name}", _APPLY)
            call = Call(
                "Metadata", "patch", uri, object_ref_json(resource, ns, name, group), status
            )
        elif resource == "certificates":
            new = f"{('shop', 'admin', 'docs')[int(rng.random() * 3)]}-tls"
            exists = rng.random() < 0.3
            status = (
                object_failure_status(409, "AlreadyExists", resource, group, new)
                if exists
                else status_json(201)
            )
            uri = uri_json(f"{base}/{resource}", _APPLY)
            call = Call(
                "Metadata", "create", uri, object_ref_json(resource, ns, new, group), status
            )
        else:
            ref = object_ref_json(resource, ns, name, group)
            call = Call("Metadata", "get", uri_json(f"{base}/{resource}/{name}"), ref)
        self.g.request(m, t, a, call)

    def apply_configmap(self, t: int, m: int, a: Actor) -> None:
        """``kubectl apply`` of an app's configmap."""
        if a.name == "intern":
            return self.get(t, m, a)
        ns, app, _ = APPS[int(self.rng.random() * 5)]
        name = f"{app}-config"
        call = Call(
            "Metadata",
            "patch",
            uri_json(f"/api/v1/namespaces/{ns}/configmaps/{name}", _APPLY),
            object_ref_json("configmaps", ns, name),
        )
        self.g.request(m, t, a, call)
        return None

    def ops(self) -> dict[str, HumanOp]:
        """The request templates by ``background.yaml`` name.

        Returns:
            Name to op.
        """
        return {
            "discovery": self.discovery,
            "list": self.list,
            "get": self.get,
            "logs": self.logs,
            "watch-pods": self.watch_pods,
            "rollout": self.rollout,
            "custom-resources": self.custom_resources,
            "apply-configmap": self.apply_configmap,
        }
