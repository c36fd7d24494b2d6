"""Request templates of the control plane: leader election and the apiservers' own leases."""

from __future__ import annotations

from functools import partial

from jobs.synth.actors import component_user_agent
from jobs.synth.engine import Actor, Call, Generator, go_json
from jobs.synth.render import ALLOW_EMPTY, allow_annotations, object_ref_json, uri_json
from jobs.synth.system import LEASES, Op, system_user_json, system_user_reason


class ControlPlaneTraffic:
    """Leader election of controller-manager and scheduler, and the apiservers' own leases."""

    ELECTED = ("kube-controller-manager", "kube-scheduler")

    def __init__(self, g: Generator) -> None:
        """Build the components and draw their lease ids.

        Args:
            g: the generator.
        """
        self.g, self.rng = g, g.rng
        self.master_ips = [f"10.0.0.{11 + i}" for i in range(max(g.masters, 3))]
        self.elections: dict[str, tuple[list[Actor], str]] = {}
        for component in self.ELECTED:
            name = f"system:{component}"
            allow = allow_annotations(system_user_reason(name))
            instances = [
                Actor(
                    component,
                    system_user_json(name, ["system:authenticated"]),
                    component_user_agent(component, "/leader-election"),
                    (go_json([ip]),),
                    allow,
                )
                for ip in self.master_ips[:3]
            ]
            self.elections[component] = (instances, g.new_id())
        # each apiserver renews its own identity lease through loopback, so it lands in its log
        self.apiservers = [
            Actor(
                "apiserver",
                go_json(
                    {
                        "username": "system:apiserver",
                        "uid": g.new_id(),
                        "groups": ["system:masters"],
                    }
                ),
                component_user_agent("kube-apiserver"),
                (go_json(["::1"]),),
                ALLOW_EMPTY,
            )
            for _ in range(g.masters)
        ]
        self.apiserver_ids = [
            f"apiserver-{self.rng.getrandbits(104):026x}" for _ in range(g.masters)
        ]

    def _elect(self, component: str, t: int, m: int) -> None:
        """The leader renews its lease every 2 s; the standbys poll it."""
        instances, uid = self.elections[component]
        who = int(self.rng.random() * 3)
        uri = uri_json(f"{LEASES}/kube-system/leases/{component}", "timeout=5s")
        if who == 0:
            rv = self.g.next_resource_version()
            ref = object_ref_json(
                "leases",
                "kube-system",
                component,
                "coordination.k8s.io",
                uid=uid,
                resource_version=rv,
            )
            self.g.request(m, t, instances[0], Call("Metadata", "update", uri, ref))
        else:
            ref = object_ref_json("leases", "kube-system", component, "coordination.k8s.io")
            self.g.request(m, t, instances[who], Call("Metadata", "get", uri, ref))

    def apiserver_lease(self, t: int, m: int) -> None:
        """An apiserver renews its identity lease (on its own master)."""
        lease = self.apiserver_ids[m]
        ref = object_ref_json(
            "leases",
            "kube-system",
            lease,
            "coordination.k8s.io",
            uid=self.g.new_id(),
            resource_version=self.g.next_resource_version(),
        )
        call = Call("Metadata", "update", uri_json(f"{LEASES}/kube-system/leases/{lease}"), ref)
        self.g.request(m, t, self.apiservers[m], call)

    def apiserver_endpointslice(self, t: int, m: int) -> None:
        """An apiserver reads the kubernetes service's EndpointSlice."""
        call = Call(
            "Metadata",
            "get",
            uri_json("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes"),
            object_ref_json("endpointslices", "default", "kubernetes", "discovery.k8s.io"),
        )
        self.g.request(m, t, self.apiservers[m], call)

    def ops(self) -> dict[str, Op]:
        """The request templates by ``background.yaml`` name.

        Returns:
            Name to op.
        """
        ops: dict[str, Op] = {f"{c}-election": partial(self._elect, c) for c in self.ELECTED}
        ops["apiserver-lease"] = self.apiserver_lease
        ops["apiserver-endpointslice"] = self.apiserver_endpointslice
        return ops
