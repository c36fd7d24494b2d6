"""The background traffic: ``background.yaml``'s weighted request templates, ready to draw."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from jobs.synth.actors import actors_table, background_humans
from jobs.synth.addons import AddonTraffic
from jobs.synth.control_plane import ControlPlaneTraffic
from jobs.synth.engine import Actor, Call, Generator, go_json, load_table
from jobs.synth.humans import HumanOp, HumanTraffic
from jobs.synth.objects import object_templates
from jobs.synth.render import object_ref_from
from jobs.synth.system import ControllerTraffic, NodeTraffic, Op


@cache
def background_table() -> dict[str, Any]:
    """``background.yaml``, parsed once.

    Returns:
        The parsed document.
    """
    return load_table("background.yaml")


def cumulative(weights: Iterable[float]) -> list[float]:
    """Running sums, for ``random.choices(cum_weights=...)``.

    Args:
        weights: the weights, in draw order.

    Returns:
        The cumulative weights.
    """
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def human_weight(minute_of_week: int) -> float:
    """Relative human activity in one minute of the week (local time).

    Args:
        minute_of_week: minutes since Monday 00:00 local.

    Returns:
        The weight.
    """
    table = background_table()
    day, minute = divmod(minute_of_week, 1440)
    weight: float = table["human_hours"][minute // 60]
    return weight * (1.0 if day < 5 else table["weekend_factor"])


@dataclass(frozen=True)
class Mix:
    """Ops of one share of the traffic with their cumulative weights."""

    ops: list[Any]
    cum_weights: list[float]


@dataclass(frozen=True)
class Background:
    """Everything the driver draws from: system, human and unauthenticated ops, and humans."""

    system: Mix
    human: Mix
    humans: Mix
    unauthenticated: Mix


def _unauthenticated_op(g: Generator, row: dict[str, Any]) -> Op:
    ref = object_ref_from(row["object_ref"]) if "object_ref" in row else ""
    call = Call(row["level"], row["verb"], go_json(row["uri"]), ref)
    ips, ua = go_json(row["source_ips"]), go_json(row["user_agent"])

    def op(t: int, m: int) -> None:
        g.unauthorized(m, t, call, ips, ua)

    return op


def _mix(rows: list[dict[str, Any]], ops: Callable[[dict[str, Any]], Any]) -> Mix:
    return Mix([ops(row) for row in rows], cumulative(row["weight"] for row in rows))


def build(g: Generator) -> Background:
    """Build the background's actors and ops (draws fixed ids from ``g`` in a fixed order).

    Args:
        g: the generator.

    Returns:
        The background.
    """
    table = background_table()
    templates = object_templates(g.cluster_created)
    nodes = NodeTraffic(g, templates)
    control_plane = ControlPlaneTraffic(g)
    ips = control_plane.master_ips
    controllers = ControllerTraffic(g, templates, nodes, ips[0], ips[1])
    addons = AddonTraffic(g, templates)
    system_ops: dict[str, Op] = {
        **nodes.ops(),
        **control_plane.ops(),
        **controllers.ops(),
        **addons.ops(),
    }

    def system_op(row: dict[str, Any]) -> Op:
        if row["op"] == "watch":
            return addons.watch(row["actor"], row["targets"])
        return system_ops[row["op"]]

    dev = actors_table()["humans"]["dev"]["username"]
    human_ops: dict[str, HumanOp] = HumanTraffic(g, templates, dev).ops()
    humans: list[tuple[float, Actor]] = background_humans()
    return Background(
        system=_mix(table["system"], system_op),
        human=_mix(table["human"], lambda row: human_ops[row["op"]]),
        humans=Mix([a for _, a in humans], cumulative(w for w, _ in humans)),
        unauthenticated=_mix(table["unauthenticated"], lambda row: _unauthenticated_op(g, row)),
    )
