"""What a detection is: id, metadata, how it is found, and what the policy must log for it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame

from jobs.config import DetectionsConfig
from jobs.vocab import BODY_VERBS

CRITICAL, HIGH, MEDIUM, LOW = "critical", "high", "medium", "low"
SEVERITIES: tuple[str, ...] = (CRITICAL, HIGH, MEDIUM, LOW)
STATUS_OK = "ok"
STATUS_NOT_OBSERVABLE = "not_observable"
STATUS_NOT_CONFIGURED = "not_configured"

# A per-request test over one row of the request summary (null counts as false), given the
# cluster's detections config (allow-lists). Built lazily: a Column needs a running Spark
# session, the catalogue must import without one.
RequestPredicate = Callable[[DetectionsConfig], Column]
Finder = Callable[[DataFrame, "Detection", DetectionsConfig], DataFrame]


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
    A finder gets the summary (with ``client_is_public`` and ``client_risk_reasons``), this
    entry and the detections config, and returns the matching request rows plus
    ``detection_id`` and ``finding_key`` (what groups the rows of one finding: an IP, an
    identity, an identity-day).

    ``configured`` says whether the cluster's config lets the detection run at all (an
    allow-list left out: "not configured", never a silent zero); ``per_workload`` groups its
    findings by the workload that carries the pod template (``jobs.detections.workloads``).
    """

    id: str
    severity: str
    section: str
    title: str
    why: str = ""
    predicate: RequestPredicate | None = None
    finder: Finder | None = None
    body_needs: tuple[BodyNeed, ...] = ()
    thresholds: Mapping[str, float] = field(default_factory=dict)
    configured: Callable[[DetectionsConfig], bool] | None = None
    per_workload: bool = False
    # A test that every request row the detection reads passes: a finder's first filter; for
    # a predicate, a cheaper test it implies, given when the predicate holds a higher-order
    # function (exists, transform: Spark cannot compile those into a whole stage). The engine
    # reads the week's requests once, keeping the rows that some detection's scope (else
    # predicate) passes; a finder without a scope makes it keep every row.
    scope: RequestPredicate | None = None

    def is_configured(self, config: DetectionsConfig) -> bool:
        """Whether ``config`` gives this detection what it needs (always, for most)."""
        return self.configured is None or self.configured(config)

    def __post_init__(self) -> None:
        """Refuse an entry with no way, or two ways, of being found."""
        if (self.predicate is None) == (self.finder is None):
            raise ValueError(f"detection {self.id}: give exactly one of predicate and finder")
        if self.severity not in SEVERITIES:
            raise ValueError(f"detection {self.id}: unknown severity {self.severity!r}")
