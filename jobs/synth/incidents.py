"""The planted incidents (``incidents.yaml``): loading, rendering into a run, and the table.

:data:`PLANTED` is the table every consumer reads (the summary, ``kaudit synth --planted``, the
README, the tests): one row per incident with its request and line counts, identity, source and
first local time, all derived from the YAML. :func:`detections_config` is the allow-list and
threat-list configuration the expected counts assume; :func:`background_matches` the realistic
background traffic that also matches a detection (its count is the run's, see ``synth_week``).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from jobs.synth.actors import ADMIN, planted_actor
from jobs.synth.engine import MICROS, Call, Generator, go_json, load_table, new_uuid, sorted_map
from jobs.synth.render import (
    FORBID,
    forbidden_path_status,
    forbidden_status,
    object_ref_from,
    status_json,
)

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
TOKEN_LIFETIME_S = 31536000
AUTH_FAILURE_CODES = (401, 403)
# ObjectMeta's Go field order, for the metadata of a stored (created) object
_META_ORDER = (
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "labels",
    "annotations",
    "ownerReferences",
)
# the registries of these kinds set metadata.generation on create
_GENERATION_KINDS = {"Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "Job", "CronJob"}


@dataclass(frozen=True)
class PlantedRequest:
    """One request of an incident, as written in ``incidents.yaml``."""

    incident: str
    at: str  # local time "Tue 22:47:05"
    actor: str
    verb: str
    uri: str
    level: str
    object_ref: dict[str, str] | None = None
    code: int = 200
    long_running: bool = False
    duration_ms: int = 0
    duration_us: int = 0
    rejected_early: bool = False
    master: int | None = None  # index; None: the masters in turn
    annotations: dict[str, str] | None = None
    impersonate: dict[str, Any] | None = None
    request_object: Any = None
    response_object: Any = None
    uid: str | None = None  # the created object's uid when others name it (ownerReferences)
    generated_name: str | None = None  # the name the server gives a generateName object

    @property
    def week_second(self) -> int:
        """Seconds from Monday 00:00 local to ``at``."""
        return week_second(self.at)

    @property
    def lines(self) -> int:
        """Lines the request writes (ResponseStarted + ResponseComplete if long-running)."""
        return 2 if self.long_running else 1


@dataclass(frozen=True)
class Incident:
    """One planted incident: the detection it fires and its requests."""

    key: str
    detection: str
    description: str
    also: tuple[str, ...]
    observable: bool
    columns: tuple[str, ...]
    requests: tuple[PlantedRequest, ...]
    note: str = ""


def week_second(at: str) -> int:
    """Seconds from Monday 00:00 to a week-relative local time like ``Tue 22:47:05``.

    Args:
        at: weekday abbreviation and ``HH:MM:SS``.

    Returns:
        The offset in seconds.
    """
    day, clock = at.split()
    h, mi, s = (int(x) for x in clock.split(":"))
    return WEEKDAYS.index(day) * 86400 + h * 3600 + mi * 60 + s


def _request(key: str, row: dict[str, Any]) -> PlantedRequest:
    fields = dict(row)
    master = fields.pop("master", None)
    return PlantedRequest(
        incident=key,
        master=None if master is None else int(master.removeprefix("master-")) - 1,
        **fields,
    )


@cache
def _document() -> dict[str, Any]:
    return load_table("incidents.yaml")


@cache
def incidents() -> tuple[Incident, ...]:
    """The incidents of ``incidents.yaml``, in table order.

    Returns:
        The incidents.
    """
    return tuple(
        Incident(
            key=row["key"],
            detection=row["detection"],
            description=row["description"],
            also=tuple(row.get("also", ())),
            observable=row.get("observable", True),
            columns=tuple(row.get("columns", ())),
            requests=tuple(_request(row["key"], r) for r in row["requests"]),
            note=row.get("note", ""),
        )
        for row in _document()["incidents"]
    )


def detections_config() -> dict[str, Any]:
    """The ``detections`` config the planted counts assume (``config`` of ``incidents.yaml``).

    Returns:
        allowed_users, allowed_registries, allowed_namespaces, hosting_asns, and
        ``threat_list``: the IPs a threat-list file must hold.
    """
    block: dict[str, Any] = _document()["config"]
    return block


def background_matches() -> list[dict[str, Any]]:
    """What of the background traffic matches a detection (``background`` of the YAML).

    Returns:
        One mapping per detection: detection, identity, source_ip, description.
    """
    rows: list[dict[str, Any]] = _document()["background"]
    return rows


def planted_requests() -> list[PlantedRequest]:
    """Every planted request in time order (ties keep table order).

    Returns:
        The requests.
    """
    every = [r for incident in incidents() for r in incident.requests]
    return sorted(every, key=lambda r: r.week_second)


def _fill(obj: Any, values: dict[str, str]) -> Any:
    if isinstance(obj, dict):
        return {k: _fill(v, values) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fill(v, values) for v in obj]
    if isinstance(obj, str) and obj.startswith("$"):
        return values.get(obj[1:], obj)
    return obj


def render(g: Generator, request: PlantedRequest, at_us: int, master: int, index: int) -> None:
    """Log one planted request.

    Args:
        g: the generator.
        request: the request.
        at_us: its received time, UTC epoch microseconds.
        master: the master's index.
        index: its place in :func:`planted_requests` (seeds its object uid).
    """
    actor = planted_actor(request.actor)
    ref = request.object_ref
    ref_json = object_ref_from(ref) if ref is not None else ""
    call = Call(request.level, request.verb, go_json(request.uri), ref_json)
    if request.code == 401:
        g.unauthorized(master, at_us, call, actor.source_ip_choices[0], actor.user_agent_json)
        return
    annotations = None
    if request.code == 403:
        username = json.loads(actor.user_json)["username"]
        if ref is None:
            status = forbidden_path_status(username, request.uri.split("?")[0])
        else:
            status = forbidden_status(
                username,
                request.verb,
                ref["resource"],
                ref.get("apiGroup", ""),
                ref.get("namespace", ""),
                ref.get("name", ""),
            )
        annotations = FORBID
        if request.rejected_early:
            short = replace(
                call, status_json=status, annotations_json=FORBID, duration_us=request.duration_us
            )
            g.request(master, at_us, actor, short)
            return
    else:
        status = status_json(request.code)
        if request.annotations:
            merged = json.loads(actor.allow_annotations_json)
            merged.update(request.annotations)
            annotations = go_json(sorted_map(merged))
    now = g.second_timestamp(at_us)
    # the object's uid is fixed by the request, whatever the seed
    uid = request.uid or new_uuid(random.Random(f"{request.incident}/{index}"))  # noqa: S311
    rv = g.next_resource_version()
    body = go_json(request.request_object) if request.request_object is not None else ""
    response = ""
    if request.response_object == "created":
        stored = json.loads(body)
        meta = {**stored["metadata"], "uid": uid, "resourceVersion": rv, "creationTimestamp": now}
        if request.generated_name:
            meta["name"] = request.generated_name
        if stored.get("kind") in _GENERATION_KINDS:
            meta["generation"] = 1
        stored["metadata"] = {k: meta[k] for k in sorted(meta, key=_META_ORDER.index)}
        if stored.get("kind") == "Pod":
            stored["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        response = go_json(stored)
    elif request.response_object is not None:
        values = {
            "uid": uid,
            "resource_version": rv,
            "now": now,
            "cluster_created": g.cluster_created,
            "token_expiry": g.second_timestamp(at_us + TOKEN_LIFETIME_S * MICROS),
        }
        response = go_json(_fill(request.response_object, values))
    call = replace(
        call,
        status_json=status,
        annotations_json=annotations,
        request_object_json=body,
        response_object_json=response,
        duration_us=request.duration_ms * 1000,
        started_status_json=status_json(request.code) if request.long_running else "",
        impersonated_json=go_json(request.impersonate) if request.impersonate else "",
    )
    g.request(master, at_us, actor, call)


def _row(incident: Incident) -> dict[str, Any]:
    requests = incident.requests
    first = min(requests, key=lambda r: r.week_second)
    actor = planted_actor(first.actor)
    user = json.loads(actor.user_json)
    # the reason the events carry: an impersonated request's names the impersonated identity's
    # binding, so it names no person behind kubernetes-admin
    annotations = {**json.loads(actor.allow_annotations_json), **(first.annotations or {})}
    reason = annotations.get("authorization.k8s.io/reason", "")
    person = reason.rsplit('to User "', 1)[1].rstrip('"') if 'to User "' in reason else ""
    source_ips = json.loads(actor.source_ip_choices[0])
    row: dict[str, Any] = {
        "id": incident.detection,
        "key": incident.key,
        "count": len(requests),
        "lines": sum(r.lines for r in requests),
        "description": incident.description,
        "username": user.get("username", ""),
        "attributed_to": person if user.get("username") == ADMIN else "",
        "source_ip": source_ips[-1],
        "source_ips": source_ips,
        "user_agent": json.loads(actor.user_agent_json),
        "first_local": first.at,
        "codes": sorted({r.code for r in requests}),
        "also": list(incident.also),
        "observable": incident.observable,
        "auth_failures": sum(1 for r in requests if r.code in AUTH_FAILURE_CODES),
        "note": incident.note,
    }
    masters = {r.master for r in requests if r.master is not None}
    if masters:
        row["master"] = f"master-{min(masters) + 1}"
    impersonated = {r.impersonate["username"] for r in requests if r.impersonate}
    if impersonated:
        row["impersonated"] = min(impersonated)
    if "failures" in incident.columns:
        row["failures"] = sum(1 for r in requests if r.code >= 400)
    if "distinct_secrets" in incident.columns:
        row["distinct_secrets"] = len({r.uri for r in requests})
    return row


PLANTED: list[dict[str, Any]] = [_row(incident) for incident in incidents()]


def _table_row(*cells: str) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def planted_markdown() -> str:
    """Markdown table of the planted incidents (week-relative local times, UTC+8).

    Returns:
        The table followed by the counting notes.
    """
    rows = [
        "| id | requests | lines | identity | source IP | first (local) | what |",
        "|---|---:|---:|---|---|---|---|",
    ]
    for e in PLANTED:
        who = e["username"] or "(unauthenticated)"
        if e["attributed_to"]:
            who += f" (= {e['attributed_to']})"
        what = e["description"]
        if e["also"]:
            what += "; also " + ", ".join(e["also"])
        if not e["observable"]:
            what += " (not observable under the ACK policy)"
        if e["note"]:
            what += f" ({e['note']})"
        rows.append(
            _table_row(
                e["id"], str(e["count"]), str(e["lines"]), who, e["source_ip"], e["first_local"],
                what,
            )
        )  # fmt: skip
    for b in background_matches():
        rows.append(
            _table_row(
                b["detection"], "see the synth summary", "", b["identity"], b["source_ip"],
                "all week", "background: " + b["description"],
            )
        )  # fmt: skip
    rows.append("")
    rows += [f"- {note}" for note in _document()["notes"]]
    return "\n".join(rows) + "\n"
