"""What a detection is: id, metadata, how it is found, and what the policy must log for it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame

from jobs.vocab import BODY_VERBS

CRITICAL, HIGH, MEDIUM, LOW = "critical", "high", "medium", "low"
SEVERITIES: tuple[str, ...] = (CRITICAL, HIGH, MEDIUM, LOW)
STATUS_OK = "ok"
STATUS_NOT_OBSERVABLE = "not_observable"

# A per-request test over one row of the request summary (null counts as false). Built lazily:
# a Column needs a running Spark session, the catalogue must import without one.
RequestPredicate = Callable[[], Column]


@dataclass(frozen=True)
class BodyNeed:
    """Requests whose body a detection inspects: the policy must log them at Request or more."""

    group: str
    resource: str
    verbs: tuple[str, ...] = BODY_VERBS


@dataclass(frozen=True, eq=False)
class Detection:
    """One catalogue entry (docs/detections.md).

    Exactly one of ``predicate`` (a per-request test) and ``finder`` (a windowed builder over
    the whole request summary, for rates, bursts and per-day counts) says how it is found.
    A finder gets the summary (with ``client_is_public``) and this entry, and returns the
    matching request rows plus ``detection_id`` and ``finding_key`` (what groups the rows of
    one finding: an IP, an identity, an identity-day).
    """

    id: str
    severity: str
    section: str
    title: str
    why: str = ""
    predicate: RequestPredicate | None = None
    finder: Callable[[DataFrame, Detection], DataFrame] | None = None
    body_needs: tuple[BodyNeed, ...] = ()
    thresholds: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse an entry with no way, or two ways, of being found."""
        if (self.predicate is None) == (self.finder is None):
            raise ValueError(f"detection {self.id}: give exactly one of predicate and finder")
        if self.severity not in SEVERITIES:
            raise ValueError(f"detection {self.id}: unknown severity {self.severity!r}")
