"""Request templates of the add-ons (DNS, ingress, monitoring, cert-manager, CNI) and of CI.

Add-ons authenticate with pod-bound service-account tokens. Built after
:class:`jobs.synth.system.ControllerTraffic` (the order of id draws is part of the byte stream).
"""

from __future__ import annotations

from collections.abc import Callable

from jobs.synth.actors import (
    cluster,
    component_user_agent,
    node_ips,
    node_names,
    service_account_reason,
    service_account_user,
)
from jobs.synth.engine import MICROS, OK_STATUS, Actor, Call, Generator, go_json
from jobs.synth.objects import watch_query
from jobs.synth.render import (
    FORBID,
    allow_annotations,
    forbidden_status,
    object_ref_json,
    rbac_reason,
    uri_json,
)
from jobs.synth.system import CREATED, LEASES, Op

# service account: namespace, pod, node index, user agent, ClusterRoleBinding
_ADDONS = (
    (
        "coredns",
        "kube-system",
        "coredns-6d5b6f6f5b-8xk2p",
        0,
        "coredns/v0.0.0 (linux/amd64) kubernetes/$Format",
        "system:coredns",
    ),
    (
        "nginx-ingress-controller",
        "kube-system",
        "nginx-ingress-controller-6c9b9d5d8f-qv7lm",
        1,
        "nginx-ingress-controller/v1.10.1-aliyun.1 (linux/amd64) ingress-nginx/3c2b5f1",
        "nginx-ingress-controller",
    ),
    (
        "metrics-server",
        "kube-system",
        "metrics-server-7f8d5b9c64-t4wkz",
        2,
        "metrics-server/v0.7.1 (linux/amd64) kubernetes/$Format",
        "system:metrics-server",
    ),
    ("prometheus-k8s", "monitoring", "prometheus-k8s-0", 3, "Prometheus/2.51.2", "prometheus-k8s"),
    (
        "prometheus-operator",
        "monitoring",
        "prometheus-operator-5b8f6c9d7-h2xnm",
        4,
        "PrometheusOperator/0.73.2",
        "prometheus-operator",
    ),
    (
        "kube-state-metrics",
        "monitoring",
        "kube-state-metrics-66f9d8d5c7-r9pwl",
        5,
        "v2.12.0",
        "kube-state-metrics",
    ),
    (
        "cert-manager",
        "cert-manager",
        "cert-manager-7d8b6c5f9-lk2pd",
        1,
        "cert-manager-certificates-issuing/v1.14.5 (linux/amd64) cert-manager/0a1b7c3",
        "cert-manager-controller-certificates",
    ),
)
_CALICO_PODS = ("4kq8n", "9vtzp", "b2hxw", "f7mrd", "k5cjs", "x8wql")  # one per node
_CALICO_UA = "calico-node/v0.0.0 (linux/amd64) kubernetes/$Format"
_CERTIFICATES = ("web-tls", "api-tls", "grafana-tls")
_HPA = "system:controller:horizontal-pod-autoscaler"


class AddonTraffic:
    """Add-on watches, leases, reviews and reads; health checks; the CI deployer."""

    def __init__(self, g: Generator, templates: dict[str, str]) -> None:
        """Build the add-ons and draw their uids.

        Args:
            g: the generator.
            templates: :func:`jobs.synth.objects.object_templates`.
        """
        self.g, self.rng, self.t = g, g.rng, templates
        self.actors: dict[str, Actor | list[Actor]] = {}
        for name, ns, pod, node, ua, binding in _ADDONS:
            self.actors[name] = self._addon(ns, name, pod, node, ua, binding)
        self.actors["calico-node"] = [
            self._addon(
                "kube-system", "calico-node", f"calico-node-{s}", i, _CALICO_UA, "calico-node"
            )
            for i, s in enumerate(_CALICO_PODS)
        ]
        proxier = "system:node-proxier"
        self.actors["kube-proxy"] = [
            Actor(
                "kube-proxy",
                go_json({"username": "system:kube-proxy", "groups": ["system:authenticated"]}),
                component_user_agent("kube-proxy"),
                (go_json([ip]),),
                allow_annotations(
                    rbac_reason("ClusterRoleBinding", proxier, proxier, "User", "system:kube-proxy")
                ),
            )
            for ip in node_ips()
        ]
        self.lease_uids = {k: g.new_id() for k in ("ingress", "cert-manager")}
        self.hpa_uid = g.new_id()
        self.public_info = Actor(
            "system:anonymous",
            go_json({"username": "system:anonymous", "groups": ["system:unauthenticated"]}),
            go_json("Go-http-client/1.1"),
            tuple(go_json([ip]) for ip in ("100.104.8.61", "100.104.8.62", "100.104.113.9")),
            allow_annotations(
                rbac_reason(
                    "ClusterRoleBinding",
                    "system:public-info-viewer",
                    "system:public-info-viewer",
                    "Group",
                    "system:unauthenticated",
                )
            ),
        )
        self.deployer = Actor(
            "deployer",
            service_account_user("prod", "deployer", g.new_id()),
            go_json("Helm/3.14.4"),
            (go_json([cluster()["ci_runner_ip"]]),),
            allow_annotations(
                rbac_reason(
                    "RoleBinding", "deployer/prod", "edit", "ServiceAccount", "deployer/prod"
                )
            ),
        )

    def _addon(self, ns: str, sa: str, pod: str, node: int, ua: str, binding: str) -> Actor:
        return Actor(
            sa,
            service_account_user(ns, sa, self.g.new_id(), pod, node_names()[node]),
            go_json(ua),
            (go_json([f"172.20.{node * 2}.{30 + node * 7 % 50}"]),),
            allow_annotations(service_account_reason(binding, ns, sa)),
        )

    def _one(self, name: str) -> Actor:
        actor = self.actors[name]
        assert isinstance(actor, Actor)
        return actor

    def watch(self, actor_name: str, targets: list[list[str]]) -> Op:
        """A reflector watch op of an add-on over ``background.yaml`` targets.

        Args:
            actor_name: the add-on (a list of actors, as calico-node, picks one per request).
            targets: ``[level, group, version, resource, namespace]`` rows.

        Returns:
            The op.
        """
        actor = self.actors[actor_name]

        def op(t: int, m: int) -> None:
            rng = self.rng
            a = actor if isinstance(actor, Actor) else actor[int(rng.random() * len(actor))]
            level, group, version, resource, ns = targets[int(rng.random() * len(targets))]
            base = f"/apis/{group}/{version}" if group else "/api/v1"
            path = f"{base}/namespaces/{ns}/{resource}" if ns else f"{base}/{resource}"
            query, secs = watch_query(self.g)
            call = Call(
                level,
                "watch",
                uri_json(path, query),
                object_ref_json(resource, ns, group=group, version=version),
                duration_us=secs * MICROS + int(rng.random() * 4000),
                started_status_json=OK_STATUS,
            )
            self.g.request(m, t, a, call)

        return op

    def _lease(self, t: int, m: int, actor: str, lease: str, uid: str, query: str) -> None:
        ref = object_ref_json(
            "leases",
            "kube-system",
            lease,
            "coordination.k8s.io",
            uid=uid,
            resource_version=self.g.next_resource_version(),
        )
        uri = uri_json(f"{LEASES}/kube-system/leases/{lease}", query)
        self.g.request(m, t, self._one(actor), Call("Metadata", "update", uri, ref))

    def ingress_lease(self, t: int, m: int) -> None:
        """The ingress controller's leader lease."""
        lease, uid = "ingress-controller-leader-nginx", self.lease_uids["ingress"]
        self._lease(t, m, "nginx-ingress-controller", lease, uid, "")

    def cert_manager_lease(self, t: int, m: int) -> None:
        """cert-manager's leader lease."""
        uid = self.lease_uids["cert-manager"]
        self._lease(t, m, "cert-manager", "cert-manager-controller", uid, "timeout=5s")

    def metrics_server_subjectaccessreview(self, t: int, m: int) -> None:
        """metrics-server asks whether the HPA may read metrics."""
        holes = {"res": "pods" if self.rng.random() < 0.8 else "nodes", "uid": self.hpa_uid}
        self._metrics_review(
            t,
            m,
            "RequestResponse",
            "authorization.k8s.io",
            "subjectaccessreviews",
            request_object_json=self.t["subjectaccessreview-request"] % holes,
            response_object_json=self.t["subjectaccessreview-allowed"] % holes,
        )

    def metrics_server_tokenreview(self, t: int, m: int) -> None:
        """metrics-server reviews a client's token."""
        self._metrics_review(t, m, "Metadata", "authentication.k8s.io", "tokenreviews")

    def _metrics_review(
        self,
        t: int,
        m: int,
        level: str,
        group: str,
        resource: str,
        request_object_json: str = "",
        response_object_json: str = "",
    ) -> None:
        """metrics-server creates a review (a virtual resource: answered, never stored)."""
        call = Call(
            level,
            "create",
            uri_json(f"/apis/{group}/v1/{resource}", "timeout=10s"),
            object_ref_json(resource, group=group),
            CREATED,
            request_object_json=request_object_json,
            response_object_json=response_object_json,
        )
        self.g.request(m, t, self._one("metrics-server"), call)

    def prometheus_scrape(self, t: int, m: int) -> None:
        """Prometheus scrapes the apiserver's /metrics."""
        reason = rbac_reason(
            "ClusterRoleBinding",
            "prometheus-k8s",
            "prometheus-k8s",
            "ServiceAccount",
            "prometheus-k8s/monitoring",
        )
        call = Call(
            "Metadata",
            "get",
            uri_json("/metrics"),
            "",
            annotations_json=allow_annotations(reason),
            duration_us=20_000 + int(self.rng.random() * 60_000),
        )
        self.g.request(m, t, self._one("prometheus-k8s"), call)

    def kube_state_metrics_denied(self, t: int, m: int) -> None:
        """kube-state-metrics lacks a rule for VPAs; its reflector retries forever (403)."""
        group = "autoscaling.k8s.io"
        user = "system:serviceaccount:monitoring:kube-state-metrics"
        call = Call(
            "Metadata",
            "list",
            uri_json(f"/apis/{group}/v1/verticalpodautoscalers", "limit=500&resourceVersion=0"),
            object_ref_json("verticalpodautoscalers", group=group),
            forbidden_status(user, "list", "verticalpodautoscalers", group, ""),
            FORBID,
        )
        self.g.request(m, t, self._one("kube-state-metrics"), call)

    def cert_manager_certificates(self, t: int, m: int) -> None:
        """cert-manager reads a Certificate, or updates its status."""
        rng, g = self.rng, self.g
        name = _CERTIFICATES[int(rng.random() * 3)]
        ns = "monitoring" if name == "grafana-tls" else "prod"
        path = f"/apis/cert-manager.io/v1/namespaces/{ns}/certificates/{name}"
        if rng.random() < 0.7:
            ref = object_ref_json("certificates", ns, name, "cert-manager.io")
            call = Call("Metadata", "get", uri_json(path), ref)
        else:
            ref = object_ref_json(
                "certificates",
                ns,
                name,
                "cert-manager.io",
                subresource="status",
                uid=g.new_id(),
                resource_version=g.next_resource_version(),
            )
            call = Call("Metadata", "update", uri_json(f"{path}/status"), ref)
        g.request(m, t, self._one("cert-manager"), call)

    def calico_get(self, t: int, m: int) -> None:
        """calico-node reads its FelixConfiguration or lists IP pools."""
        calico = self.actors["calico-node"]
        assert isinstance(calico, list)
        a = calico[int(self.rng.random() * len(calico))]
        group = "crd.projectcalico.org"
        if self.rng.random() < 0.5:
            uri = uri_json(f"/apis/{group}/v1/felixconfigurations/default")
            call = Call(
                "Metadata", "get", uri, object_ref_json("felixconfigurations", "", "default", group)
            )
        else:
            uri = uri_json(f"/apis/{group}/v1/ippools")
            call = Call("Metadata", "list", uri, object_ref_json("ippools", group=group))
        self.g.request(m, t, a, call)

    def health_check(self, t: int, m: int) -> None:
        """SLB health checks from 100.64/10, anonymous."""
        path = "/readyz" if self.rng.random() < 0.7 else "/livez"
        self.g.request(m, t, self.public_info, Call("Metadata", "get", uri_json(path), ""))

    def ci_deploy(self, t: int, m: int) -> None:
        """The CI deployer (Helm) reads a prod Deployment."""
        app = ("web", "api", "worker")[int(self.rng.random() * 3)]
        call = Call(
            "Request",
            "get",
            uri_json(f"/apis/apps/v1/namespaces/prod/deployments/{app}"),
            object_ref_json("deployments", "prod", app, "apps"),
        )
        self.g.request(m, t, self.deployer, call)

    def ops(self) -> dict[str, Op]:
        """The request templates by ``background.yaml`` name (``watch`` is built per entry).

        Returns:
            Name to op.
        """
        ops: dict[str, Callable[[int, int], None]] = {
            "ingress-lease": self.ingress_lease,
            "cert-manager-lease": self.cert_manager_lease,
            "metrics-server-subjectaccessreview": self.metrics_server_subjectaccessreview,
            "metrics-server-tokenreview": self.metrics_server_tokenreview,
            "prometheus-scrape": self.prometheus_scrape,
            "kube-state-metrics-denied": self.kube_state_metrics_denied,
            "cert-manager-certificates": self.cert_manager_certificates,
            "calico-get": self.calico_get,
            "health-check": self.health_check,
            "ci-deploy": self.ci_deploy,
        }
        return ops
