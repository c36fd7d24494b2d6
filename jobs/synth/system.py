"""Request templates of the nodes, the control plane and the controllers.

Each ``*Traffic`` class draws its fixed ids (object uids) from the run's random source when it
is built, so the classes are built in a fixed order (see :func:`jobs.synth.background.build`);
its :meth:`ops` maps the names used in ``background.yaml`` to ``op(at_us, master)``.
"""

from __future__ import annotations

from collections.abc import Callable

from jobs.synth.actors import (
    component_user_agent,
    controller_actor,
    node_ips,
    node_names,
    service_account_reason,
)
from jobs.synth.engine import MICROS, OK_STATUS, Actor, Call, Generator, go_json
from jobs.synth.objects import APPS, pod_name, random_suffix, watch_query
from jobs.synth.render import (
    ALLOW_EMPTY,
    PSA_KEY,
    allow_annotations,
    conflict,
    object_ref_json,
    rbac_reason,
    status_json,
    uri_json,
)

Op = Callable[[int, int], None]
CREATED = status_json(201)
BINDING_CREATED = '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201}'
LEASES = "/apis/coordination.k8s.io/v1/namespaces"


def system_user_json(username: str, groups: list[str]) -> str:
    """A user without uid or extra (JSON).

    Args:
        username: the username.
        groups: its groups.

    Returns:
        The JSON object.
    """
    return go_json({"username": username, "groups": groups})


def system_user_reason(name: str, role: str | None = None) -> str:
    """RBAC reason of the default ClusterRoleBinding of a ``system:`` user.

    Args:
        name: the username.
        role: the ClusterRole and binding, when not named after the user.

    Returns:
        The reason text.
    """
    return rbac_reason("ClusterRoleBinding", role or name, role or name, "User", name)


class NodeTraffic:
    """The kubelets: node leases and status, watches, pod reads and pod status."""

    def __init__(self, g: Generator, templates: dict[str, str]) -> None:
        """Build the kubelets and draw their lease, node and boot ids.

        Args:
            g: the generator.
            templates: :func:`jobs.synth.objects.object_templates`.
        """
        self.g, self.rng, self.t = g, g.rng, templates
        self.nodes, ips = node_names(), node_ips()
        self.kubelets = [
            Actor(
                f"node{i}",
                system_user_json(f"system:node:{n}", ["system:nodes", "system:authenticated"]),
                component_user_agent("kubelet"),
                (go_json([ips[i]]),),
                ALLOW_EMPTY,
            )
            for i, n in enumerate(self.nodes)
        ]
        self.lease_uids = [g.new_id() for _ in self.nodes]
        self.node_uids = [g.new_id() for _ in self.nodes]
        self.boot_ids = [g.new_id() for _ in self.nodes]

    def _node(self) -> int:
        return int(self.rng.random() * len(self.nodes))

    def node_lease(self, t: int, m: int) -> None:
        """Renew a node lease."""
        i = self._node()
        n = self.nodes[i]
        ref = object_ref_json(
            "leases",
            "kube-node-lease",
            n,
            "coordination.k8s.io",
            uid=self.lease_uids[i],
            resource_version=self.g.next_resource_version(),
        )
        uri = uri_json(f"{LEASES}/kube-node-lease/leases/{n}", "timeout=10s")
        self.g.request(m, t, self.kubelets[i], Call("Metadata", "update", uri, ref))

    def node_status(self, t: int, m: int) -> None:
        """Patch a node's status (heartbeat), logged with both bodies."""
        i = self._node()
        n, uid = self.nodes[i], self.node_uids[i]
        holes = {
            "hb": self.g.second_timestamp(t),
            "node": n,
            "uid": uid,
            "rv": self.g.next_resource_version(),
            "ip": node_ips()[i],
            "cidr": f"172.20.{i * 2}.0/25",
            "ecs": f"i-uf6{uid[:17].replace('-', '')}",
            "mid": uid.replace("-", ""),
            "boot": self.boot_ids[i],
        }
        call = Call(
            "RequestResponse",
            "patch",
            uri_json(f"/api/v1/nodes/{n}/status", "timeout=10s"),
            object_ref_json("nodes", "", n, subresource="status"),
            request_object_json=self.t["node-status-patch"] % holes,
            response_object_json=self.t["node"] % holes,
        )
        self.g.request(m, t, self.kubelets[i], call)

    def kubelet_watch(self, t: int, m: int) -> None:
        """A kubelet reflector watch (its own pods and node, services, configmaps, CSI)."""
        rng, g = self.rng, self.g
        i = self._node()
        n = self.nodes[i]
        kind = int(rng.random() * 5)
        if kind == 0:
            query, secs = watch_query(g, f"spec.nodeName%3D{n}")
            path, ref, level = "/api/v1/pods", object_ref_json("pods"), "Request"
        elif kind == 1:
            query, secs = watch_query(g, f"metadata.name%3D{n}")
            path, ref, level = "/api/v1/nodes", object_ref_json("nodes", "", n), "Request"
        elif kind == 2:
            query, secs = watch_query(g)
            path, ref, level = "/api/v1/services", object_ref_json("services"), "Request"
        elif kind == 3:
            ns = ("prod", "staging", "monitoring", "kube-system")[int(rng.random() * 4)]
            query, secs = watch_query(g, "metadata.name%3Dkube-root-ca.crt")
            path = f"/api/v1/namespaces/{ns}/configmaps"
            ref, level = object_ref_json("configmaps", ns, "kube-root-ca.crt"), "Metadata"
        else:
            query, secs = watch_query(g)
            path = "/apis/storage.k8s.io/v1/csidrivers"
            ref, level = object_ref_json("csidrivers", group="storage.k8s.io"), "Request"
        call = Call(
            level,
            "watch",
            uri_json(path, query),
            ref,
            duration_us=secs * MICROS + int(rng.random() * 3000),
            started_status_json=OK_STATUS,
        )
        g.request(m, t, self.kubelets[i], call)

    def kubelet_get_pod(self, t: int, m: int) -> None:
        """A kubelet reads one of its pods."""
        i = self._node()
        ns, app, h = APPS[int(self.rng.random() * len(APPS))]
        name = pod_name(self.g, app, h)
        uri = uri_json(f"/api/v1/namespaces/{ns}/pods/{name}")
        call = Call("Request", "get", uri, object_ref_json("pods", ns, name))
        self.g.request(m, t, self.kubelets[i], call)

    def kubelet_pod_status(self, t: int, m: int) -> None:
        """A kubelet patches a pod's status to Ready."""
        rng, g = self.rng, self.g
        i = self._node()
        ns, app, h = APPS[int(rng.random() * len(APPS))]
        name = pod_name(g, app, h)
        holes = {
            "uid": g.new_id(),
            "ts": g.second_timestamp(t),
            "cid": f"{rng.getrandbits(256):064x}",
            "app": app,
            "hash": h,
            "name": name,
            "ns": ns,
            "rv": g.next_resource_version(),
            "ct": g.second_timestamp(t - 9 * MICROS),
            "rsuid": self.node_uids[0],
            "podip": f"172.20.{i * 2}.{10 + int(rng.random() * 100)}",
        }
        response = self.t["pod-created"] % holes
        call = Call(
            "RequestResponse",
            "patch",
            uri_json(f"/api/v1/namespaces/{ns}/pods/{name}/status"),
            object_ref_json("pods", ns, name, subresource="status"),
            request_object_json=self.t["pod-status-patch"] % holes,
            response_object_json=response,
        )
        g.request(m, t, self.kubelets[i], call)

    def ops(self) -> dict[str, Op]:
        """The request templates by ``background.yaml`` name.

        Returns:
            Name to op.
        """
        return {
            "node-lease": self.node_lease,
            "node-status": self.node_status,
            "kubelet-watch": self.kubelet_watch,
            "kubelet-get-pod": self.kubelet_get_pod,
            "kubelet-pod-status": self.kubelet_pod_status,
        }


class ControllerTraffic:
    """Controllers with their own service-account credentials, and the scheduler's bindings."""

    def __init__(
        self,
        g: Generator,
        templates: dict[str, str],
        nodes: NodeTraffic,
        master_ip: str,
        scheduler_ip: str,
    ) -> None:
        """Build the controllers and draw their uids and the apps' ReplicaSet uids.

        Args:
            g: the generator.
            templates: :func:`jobs.synth.objects.object_templates`.
            nodes: the node traffic (its node uids double as owner uids).
            master_ip: where the controller-manager runs.
            scheduler_ip: where the scheduler runs.
        """
        self.g, self.rng, self.t, self.nodes = g, g.rng, templates, nodes

        def controller(name: str) -> Actor:
            return controller_actor(name, master_ip)

        self.replicaset = controller("replicaset-controller")
        self.deployment = controller("deployment-controller")
        self.endpointslice = controller("endpointslice-controller")
        self.endpoints = controller("endpoint-controller")
        self.hpa = controller("horizontal-pod-autoscaler")
        self.garbage_collector = controller("generic-garbage-collector")
        self.job = controller("job-controller")
        self.replicaset_psa = self._with_psa("replicaset-controller")
        self.job_psa = self._with_psa("job-controller")
        self.scheduler = _scheduler(scheduler_ip)
        self.app_uids = {(ns, app): g.new_id() for ns, app, _ in APPS}

    @staticmethod
    def _with_psa(name: str) -> str:
        reason = service_account_reason(f"system:controller:{name}", "kube-system", name)
        return allow_annotations(reason, {PSA_KEY: "privileged:latest"})

    def _app(self) -> tuple[str, str, str]:
        return APPS[int(self.rng.random() * len(APPS))]

    def _old_rv(self, spread: int = 200) -> str:
        return str(self.g.resource_version - 3 - int(self.rng.random() * spread))

    def replicaset_create_pod(self, t: int, m: int) -> None:
        """The ReplicaSet controller creates a pod."""
        g = self.g
        ns, app, h = self._app()
        holes = {
            "app": app,
            "hash": h,
            "ns": ns,
            "name": pod_name(g, app, h),
            "uid": g.new_id(),
            "rv": g.next_resource_version(),
            "ct": g.second_timestamp(t),
            "rsuid": self.nodes.node_uids[1],
        }
        call = Call(
            "RequestResponse",
            "create",
            uri_json(f"/api/v1/namespaces/{ns}/pods"),
            object_ref_json("pods", ns),
            CREATED,
            self.replicaset_psa,
            request_object_json=self.t["pod-create-request"] % holes,
            response_object_json=self.t["pod-created"] % holes,
        )
        g.request(m, t, self.replicaset, call)

    def scheduler_bind(self, t: int, m: int) -> None:
        """The scheduler binds a pod to a node."""
        g = self.g
        ns, app, h = self._app()
        name = pod_name(g, app, h)
        uid = g.new_id()
        node = self.nodes.nodes[int(self.rng.random() * len(self.nodes.nodes))]
        holes = {"name": name, "ns": ns, "uid": uid, "node": node}
        call = Call(
            "RequestResponse",
            "create",
            uri_json(f"/api/v1/namespaces/{ns}/pods/{name}/binding"),
            object_ref_json("pods", ns, name, subresource="binding", uid=uid),
            CREATED,
            request_object_json=self.t["binding"] % holes,
            response_object_json=BINDING_CREATED,
        )
        g.request(m, t, self.scheduler, call)

    def replicaset_status(self, t: int, m: int) -> None:
        """The ReplicaSet controller updates a status; one in ten hits a stale cache (409)."""
        ns, app, h = self._app()
        name = f"{app}-{h}"
        old = self._old_rv()
        holes = {"name": name, "ns": ns, "uid": self.app_uids[ns, app], "rv": old, "app": app}
        uri = uri_json(f"/apis/apps/v1/namespaces/{ns}/replicasets/{name}/status")
        ref = object_ref_json(
            "replicasets",
            ns,
            name,
            "apps",
            subresource="status",
            uid=holes["uid"],
            resource_version=old,
        )
        body = self.t["replicaset-status"] % holes
        if self.rng.random() < 0.1:
            status, response = conflict("replicasets", "apps", name)
        else:
            holes["rv"] = self.g.next_resource_version()
            status, response = OK_STATUS, self.t["replicaset-status"] % holes
        call = Call(
            "RequestResponse",
            "update",
            uri,
            ref,
            status,
            request_object_json=body,
            response_object_json=response,
        )
        self.g.request(m, t, self.replicaset, call)

    def deployment_status(self, t: int, m: int) -> None:
        """The Deployment controller updates a status."""
        ns, app, _ = self._app()
        old = self._old_rv()
        holes = {"app": app, "ns": ns, "uid": self.app_uids[ns, app], "rv": old}
        body = self.t["deployment-status"] % holes
        holes["rv"] = self.g.next_resource_version()
        call = Call(
            "RequestResponse",
            "update",
            uri_json(f"/apis/apps/v1/namespaces/{ns}/deployments/{app}/status"),
            object_ref_json(
                "deployments",
                ns,
                app,
                "apps",
                subresource="status",
                uid=holes["uid"],
                resource_version=old,
            ),
            request_object_json=body,
            response_object_json=self.t["deployment-status"] % holes,
        )
        self.g.request(m, t, self.deployment, call)

    def endpointslice_update(self, t: int, m: int) -> None:
        """The EndpointSlice controller updates a slice; one in twenty conflicts."""
        rng = self.rng
        ns, app, _ = self._app()
        name = f"{app}-{rng.getrandbits(20):05x}"
        group = "discovery.k8s.io"
        status = conflict("endpointslices", group, name)[0] if rng.random() < 0.05 else OK_STATUS
        ref = object_ref_json(
            "endpointslices",
            ns,
            name,
            group,
            uid=self.g.new_id(),
            resource_version=self.g.next_resource_version(),
        )
        uri = uri_json(f"/apis/{group}/v1/namespaces/{ns}/endpointslices/{name}")
        self.g.request(m, t, self.endpointslice, Call("Metadata", "update", uri, ref, status))

    def endpoints_update(self, t: int, m: int) -> None:
        """The Endpoints controller updates a service's Endpoints."""
        rng, g = self.rng, self.g
        ns, app, h = self._app()
        i = int(rng.random() * len(self.nodes.nodes))
        old = self._old_rv()
        holes = {
            "app": app,
            "ns": ns,
            "uid": self.app_uids[ns, app],
            "rv": old,
            "ip": f"172.20.{i * 2}.{10 + int(rng.random() * 100)}",
            "node": self.nodes.nodes[i],
            "pod": pod_name(g, app, h),
        }
        body = self.t["endpoints"] % holes
        holes["rv"] = g.next_resource_version()
        call = Call(
            "RequestResponse",
            "update",
            uri_json(f"/api/v1/namespaces/{ns}/endpoints/{app}"),
            object_ref_json("endpoints", ns, app, uid=holes["uid"], resource_version=old),
            request_object_json=body,
            response_object_json=self.t["endpoints"] % holes,
        )
        g.request(m, t, self.endpoints, call)

    def hpa_metrics(self, t: int, m: int) -> None:
        """The HPA controller lists pod metrics of a prod app."""
        ns, app, _ = APPS[int(self.rng.random() * 3)]
        call = Call(
            "Metadata",
            "list",
            uri_json(
                f"/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods", f"labelSelector=app%3D{app}"
            ),
            object_ref_json("pods", ns, group="metrics.k8s.io", version="v1beta1"),
        )
        self.g.request(m, t, self.hpa, call)

    def garbage_collector_watch(self, t: int, m: int) -> None:
        """The garbage collector's watches."""
        group, resource = (
            ("apps", "replicasets"),
            ("batch", "jobs"),
            ("", "pods"),
            ("apps", "deployments"),
            ("policy", "poddisruptionbudgets"),
        )[int(self.rng.random() * 5)]
        query, secs = watch_query(self.g)
        path = f"/apis/{group}/v1/{resource}" if group else f"/api/v1/{resource}"
        call = Call(
            "Request",
            "watch",
            uri_json(path, query),
            object_ref_json(resource, group=group),
            duration_us=secs * MICROS + 1500,
            started_status_json=OK_STATUS,
        )
        self.g.request(m, t, self.garbage_collector, call)

    def job_pod(self, t: int, m: int) -> None:
        """The Job controller creates the pod of a nightly report job."""
        g = self.g
        job_id = str(29_000_000 + int(self.rng.random() * 99_999))
        name = f"report-{job_id}-" + random_suffix(g)
        body = self.t["job-pod-create-request"] % {"jid": job_id}
        # the created pod is the request with server-set metadata and a status
        metadata = (
            f'"metadata":{{"name":"{name}","generateName":"report-{job_id}-","namespace":"prod",'
            f'"uid":"{g.new_id()}","resourceVersion":"{g.next_resource_version()}",'
            f'"creationTimestamp":"{g.second_timestamp(t)}",'
        )
        response = body.replace(
            f'"metadata":{{"generateName":"report-{job_id}-","namespace":"prod",'
            '"creationTimestamp":null,',
            metadata,
        )
        response = response[:-1] + ',"status":{"phase":"Pending","qosClass":"Burstable"}}'
        call = Call(
            "RequestResponse",
            "create",
            uri_json("/api/v1/namespaces/prod/pods"),
            object_ref_json("pods", "prod"),
            CREATED,
            self.job_psa,
            request_object_json=body,
            response_object_json=response,
        )
        g.request(m, t, self.job, call)

    def ops(self) -> dict[str, Op]:
        """The request templates by ``background.yaml`` name.

        Returns:
            Name to op.
        """
        return {
            "replicaset-create-pod": self.replicaset_create_pod,
            "scheduler-bind": self.scheduler_bind,
            "replicaset-status": self.replicaset_status,
            "deployment-status": self.deployment_status,
            "endpointslice-update": self.endpointslice_update,
            "endpoints-update": self.endpoints_update,
            "hpa-metrics": self.hpa_metrics,
            "garbage-collector-watch": self.garbage_collector_watch,
            "job-pod": self.job_pod,
        }


def _scheduler(ip: str) -> Actor:
    name = "system:kube-scheduler"
    return Actor(
        "kube-scheduler",
        system_user_json(name, ["system:authenticated"]),
        component_user_agent("kube-scheduler", "/scheduler"),
        (go_json([ip]),),
        allow_annotations(system_user_reason(name)),
    )
