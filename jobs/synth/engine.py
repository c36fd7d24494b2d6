"""The generator's machinery: random source and clock, Go-style event lines, lumberjack rotation.

Nothing here knows what traffic a cluster has; :mod:`jobs.synth.background` and
:mod:`jobs.synth.incidents` decide that and call :meth:`Generator.request`.

Byte-for-byte reproducibility rests on the order of the calls to ``Generator.rng``: every
request draws, in this order, its duration (unless given), its auditID, its source IPs (only
when the actor has alternatives), the ResponseStarted offset (long-running requests) and one
jitter per written line.
"""

from __future__ import annotations

import datetime as dt
import gzip
import heapq
import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import yaml

MICROS = 1_000_000
WEEK_S = 7 * 86400
BUCKET_S = 60
ACTIVE_NAME = "kubernetes.audit"
MIB = 1048576
MIN_MAX_SIZE_BYTES = 64 * 1024  # every generated line is far below this
GZIP_LEVEL = 6  # Go compress/gzip DefaultCompression
CLUSTER_AGE_DAYS = 213
OK_STATUS = '{"metadata":{},"code":200}'

_GO_ESCAPES = {
    "&": "\\u0026",
    "<": "\\u003c",
    ">": "\\u003e",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
# every second of a day, formatted once: timestamps are the hottest string in the generator
_CLOCK = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
_EVENT_HEAD = '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"'
_UNAUTHORIZED_STATUS = (
    '{"metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}'
)
# a responseStatus ends with its code (Go field order): what auth-failures counts, 401 or 403
_AUTH_FAILURE_ENDINGS = ('"code":401}', '"code":403}')


def load_table(name: str) -> dict[str, Any]:
    """One of the package's YAML tables (``actors.yaml``, ``background.yaml``, ...).

    Args:
        name: the file name next to this module.

    Returns:
        The parsed document.
    """
    table: dict[str, Any] = yaml.safe_load((Path(__file__).parent / name).read_text("utf-8"))
    return table


def go_json(obj: Any) -> str:
    """Serialize like Go encoding/json: compact, UTF-8, HTML characters escaped.

    Args:
        obj: a JSON-serializable value.

    Returns:
        The JSON text.
    """
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    for char, escape in _GO_ESCAPES.items():
        if char in text:
            text = text.replace(char, escape)
    return text


def sorted_map(mapping: dict[str, Any]) -> dict[str, Any]:
    """Go marshals map keys sorted; struct fields keep declaration order.

    Args:
        mapping: a Go ``map[string]...`` value.

    Returns:
        The same mapping with its keys in sorted order.
    """
    return dict(sorted(mapping.items()))


def new_uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (one ``getrandbits(128)``).

    Args:
        rng: the random source.

    Returns:
        The UUID text.
    """
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


@dataclass(frozen=True)
class Actor:
    """Who sends a request: pre-serialized user, user agent, source IPs and allow annotations."""

    name: str
    user_json: str
    user_agent_json: str
    source_ip_choices: tuple[str, ...]  # pre-serialized sourceIPs alternatives
    allow_annotations_json: str
    system: bool = True

    def source_ips_json(self, rng: random.Random) -> str:
        """One of the actor's sourceIPs alternatives (no draw when there is only one).

        Args:
            rng: the generator's random source.

        Returns:
            The sourceIPs JSON array.
        """
        choices = self.source_ip_choices
        return choices[0] if len(choices) == 1 else choices[int(rng.random() * len(choices))]


@dataclass(frozen=True)
class Call:
    """What one request asks and gets (JSON fragments pre-serialized), before timing and id.

    ``started_status_json`` set means a long-running request: a ResponseStarted line precedes
    the ResponseComplete one. ``annotations_json`` None means the actor's allow annotations;
    ``duration_us`` 0 means a random short duration.
    """

    level: str
    verb: str
    uri_json: str
    object_ref_json: str
    status_json: str = OK_STATUS
    annotations_json: str | None = None
    request_object_json: str = ""
    response_object_json: str = ""
    duration_us: int = 0
    started_status_json: str = ""
    impersonated_json: str = ""
    source_ips_json: str = ""


@dataclass(frozen=True)
class EventLine:
    """One audit.k8s.io/v1 Event line, in v1 field order; empty optional fields are omitted."""

    level: str
    audit_id: str
    stage: str
    uri_json: str
    verb: str
    user_json: str
    impersonated_json: str
    source_ips_json: str
    user_agent_json: str
    object_ref_json: str
    status_json: str
    request_object_json: str
    response_object_json: str
    received: str
    stage_time: str
    annotations_json: str

    def render(self) -> str:
        """The line, newline included.

        Returns:
            The serialized event.
        """
        parts = [
            f'{_EVENT_HEAD}{self.level}","auditID":"{self.audit_id}","stage":"{self.stage}",'
            f'"requestURI":{self.uri_json},"verb":"{self.verb}","user":{self.user_json}'
        ]
        if self.impersonated_json:
            parts.append(f',"impersonatedUser":{self.impersonated_json}')
        parts.append(f',"sourceIPs":{self.source_ips_json},"userAgent":{self.user_agent_json}')
        if self.object_ref_json:
            parts.append(f',"objectRef":{self.object_ref_json}')
        parts.append(f',"responseStatus":{self.status_json}')
        if self.request_object_json:
            parts.append(f',"requestObject":{self.request_object_json}')
        if self.response_object_json:
            parts.append(f',"responseObject":{self.response_object_json}')
        parts.append(
            f',"requestReceivedTimestamp":"{self.received}","stageTimestamp":"{self.stage_time}"'
        )
        if self.annotations_json:
            parts.append(f',"annotations":{self.annotations_json}')
        parts.append("}\n")
        return "".join(parts)


class Generator:
    """The random source, the clock and the per-master line queues of one run."""

    def __init__(self, start_us: int, masters: int, seed: int) -> None:
        """Start a run.

        Args:
            start_us: the week's first microsecond (UTC epoch).
            masters: number of masters (one line queue each).
            seed: the run's seed.
        """
        self.rng = random.Random(seed)  # noqa: S311 - reproducible synthetic data
        self.start_us = start_us
        self.end_us = start_us + WEEK_S * MICROS
        self.masters = masters
        self.resource_version = 48_000_000 + seed % 1000 * 1000
        self.lines = 0
        self.requests = 0
        self.auth_failures = 0  # requests answered 401 or 403
        self.bucket_end = start_us
        # lines due before the current bucket ends go to a list, later ones to a heap
        self._due: list[list[tuple[int, str, int]]] = [[] for _ in range(masters)]
        self._later: list[list[tuple[int, int, str, int]]] = [[] for _ in range(masters)]
        self._pushed = 0
        first_day = start_us // MICROS // 86400 - 1
        self._dates = {
            d: (dt.date(1970, 1, 1) + dt.timedelta(days=d)).isoformat()
            for d in range(first_day, first_day + 10)
        }
        self.cluster_created = self.second_timestamp(
            start_us - (CLUSTER_AGE_DAYS * 86400 - 37_813) * MICROS
        )

    def micro_timestamp(self, us: int) -> str:
        """``2026-11-16T01:02:03.456789Z`` for a time inside the run.

        Args:
            us: UTC epoch microseconds.

        Returns:
            The RFC 3339 timestamp with microseconds.
        """
        sec, frac = divmod(us, MICROS)
        day, second_of_day = divmod(sec, 86400)
        return f"{self._dates[day]}T{_CLOCK[second_of_day]}.{frac:06d}Z"

    def second_timestamp(self, us: int) -> str:
        """``2026-11-16T01:02:03Z`` (Kubernetes metav1.Time) for any time.

        Args:
            us: UTC epoch microseconds.

        Returns:
            The RFC 3339 timestamp in whole seconds.
        """
        day, second_of_day = divmod(us // MICROS, 86400)
        date = self._dates.get(day) or (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()
        return f"{date}T{_CLOCK[second_of_day]}Z"

    def new_id(self) -> str:
        """A fresh UUID from the run's random source (auditIDs, object uids).

        Returns:
            The UUID text.
        """
        return new_uuid(self.rng)

    def next_resource_version(self) -> str:
        """The cluster's next resourceVersion (etcd revisions grow by a few per write).

        Returns:
            The resourceVersion text.
        """
        self.resource_version += 1 + int(self.rng.random() * 9)
        return str(self.resource_version)

    def _queue(self, master: int, stage_us: int, line: EventLine) -> None:
        key = stage_us + int(self.rng.random() * 2500)  # writes are only roughly ordered
        self.lines += 1
        text = line.render()
        if key < self.bucket_end:
            self._due[master].append((key, text, stage_us))
        else:
            self._pushed += 1
            heapq.heappush(self._later[master], (key, self._pushed, text, stage_us))

    def request(self, master: int, at_us: int, actor: Actor, call: Call) -> None:
        """Log one request: ResponseComplete, preceded by ResponseStarted if long-running.

        Args:
            master: index of the master whose apiserver serves it.
            at_us: requestReceivedTimestamp, UTC epoch microseconds.
            actor: who sends it.
            call: what it asks and gets.
        """
        rng = self.rng
        duration = call.duration_us or 600 + int(rng.random() * rng.random() * 40_000)
        duration = min(duration, self.end_us - 1 - at_us)
        received = self.micro_timestamp(at_us)
        audit_id = self.new_id()
        source_ips = call.source_ips_json or actor.source_ips_json(rng)
        annotations = (
            actor.allow_annotations_json if call.annotations_json is None else call.annotations_json
        )
        self.requests += 1
        if call.status_json.endswith(_AUTH_FAILURE_ENDINGS):
            self.auth_failures += 1

        def line(stage: str, status: str, req_obj: str, resp_obj: str, stage_us: int) -> None:
            event = EventLine(
                call.level,
                audit_id,
                stage,
                call.uri_json,
                call.verb,
                actor.user_json,
                call.impersonated_json,
                source_ips,
                actor.user_agent_json,
                call.object_ref_json,
                status,
                req_obj,
                resp_obj,
                received,
                self.micro_timestamp(stage_us),
                annotations,
            )
            self._queue(master, stage_us, event)

        if call.started_status_json:
            started_us = at_us + min(200 + int(rng.random() * 1800), duration // 2)
            line("ResponseStarted", call.started_status_json, "", "", started_us)
        line(
            "ResponseComplete",
            call.status_json,
            call.request_object_json,
            call.response_object_json,
            at_us + duration,
        )

    def unauthorized(
        self, master: int, at_us: int, call: Call, source_ips_json: str, user_agent_json: str
    ) -> None:
        """Log a failed authentication: one ResponseStarted line, ``user: {}``, no annotations.

        Args:
            master: index of the master whose apiserver serves it.
            at_us: requestReceivedTimestamp, UTC epoch microseconds.
            call: level, verb, URI and objectRef of the request (the rest is ignored).
            source_ips_json: the client's sourceIPs.
            user_agent_json: the client's user agent.
        """
        self.requests += 1
        self.auth_failures += 1
        started_us = at_us + 150 + int(self.rng.random() * 900)
        event = EventLine(
            call.level,
            self.new_id(),
            "ResponseStarted",
            call.uri_json,
            call.verb,
            "{}",
            "",
            source_ips_json,
            user_agent_json,
            call.object_ref_json,
            _UNAUTHORIZED_STATUS,
            "",
            "",
            self.micro_timestamp(at_us),
            self.micro_timestamp(started_us),
            "",
        )
        self._queue(master, started_us, event)

    def drain(self, master: int, upto_us: int) -> list[tuple[int, str, int]]:
        """Take a master's lines whose write time is before ``upto_us``, in write order.

        Args:
            master: index of the master.
            upto_us: exclusive write-time bound.

        Returns:
            ``(write key, line, stage time)`` tuples, sorted.
        """
        items = self._due[master]
        self._due[master] = []
        later = self._later[master]
        while later and later[0][0] < upto_us:
            key, _, text, stage = heapq.heappop(later)
            items.append((key, text, stage))
        items.sort()
        return items


class RotatingWriter:
    """Mimics lumberjack v2: rotate before a write that would exceed the limit."""

    def __init__(
        self, directory: Path, limit: int, compress: bool, rng: random.Random, empty_mtime_us: int
    ) -> None:
        """Open ``directory/kubernetes.audit``.

        Args:
            directory: the master's log directory.
            limit: ``--audit-log-maxsize`` in bytes.
            compress: gzip rotated backups.
            rng: the random source of rotation delays (separate from the traffic's).
            empty_mtime_us: mtime of the active file if nothing is ever written to it.
        """
        self.directory = directory
        self.limit = limit
        self.compress = compress
        self.rng = rng
        self.active = directory / ACTIVE_NAME
        self.file = self._open()
        self.size = 0
        self.newest_stage_us = 0
        self.last_rotation_ms = 0
        self.backups: list[str] = []
        self.lines = 0
        self.empty_mtime_us = empty_mtime_us

    def _open(self) -> BinaryIO:
        # lumberjack v2.2 creates the first file 0600 and later ones with the old file's mode
        f = open(self.active, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in _rotate/close
        os.chmod(self.active, 0o600)
        return f

    def write(self, data: bytes, stage_us: int) -> None:
        """Append one line, rotating first if it would not fit.

        Args:
            data: the encoded line.
            stage_us: the line's stageTimestamp (the backup is named after the newest).

        Raises:
            ValueError: the line alone exceeds the limit.
        """
        n = len(data)
        if self.size + n > self.limit:
            if n > self.limit:
                raise ValueError("event line longer than max_size; lumberjack would drop it")
            self._rotate()
        self.file.write(data)
        self.size += n
        self.lines += 1
        self.newest_stage_us = max(self.newest_stage_us, stage_us)

    def _rotate(self) -> None:
        self.file.close()
        # the rename happens a few ms after the newest event in the file was written
        rotation_us = self.newest_stage_us + 1000 + int(self.rng.random() * 4000)
        ms = max(rotation_us // 1000, self.last_rotation_ms + 1)
        self.last_rotation_ms = ms
        stamp = dt.datetime.fromtimestamp(ms // 1000, dt.UTC).strftime("%Y-%m-%dT%H-%M-%S")
        name = f"kubernetes-{stamp}.{ms % 1000:03d}.audit"
        backup = self.directory / name
        os.replace(self.active, backup)
        mtime_ns = ms * 1_000_000
        if self.compress:
            gz = self.directory / (name + ".gz")
            with (
                open(backup, "rb") as src,
                open(gz, "wb") as raw,
                gzip.GzipFile(
                    filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=raw, mtime=0
                ) as z,
            ):
                shutil.copyfileobj(src, z, 1 << 20)
            os.chmod(gz, 0o600)
            os.utime(gz, ns=(mtime_ns, mtime_ns))
            backup.unlink()
            name += ".gz"
        else:
            os.utime(backup, ns=(mtime_ns, mtime_ns))
        self.backups.append(name)
        self.file = self._open()
        self.size = 0
        self.newest_stage_us = 0

    def close(self) -> None:
        """Close the active file, its mtime the newest stage time written to it."""
        self.file.close()
        us = self.newest_stage_us or self.empty_mtime_us
        os.utime(self.active, ns=(us * 1000, us * 1000))
