"""Per-channel delivery results, the retry loop, and text sanitising shared by the channels."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

ChannelStatus = Literal["sent", "failed", "blocked"]

# A retry schedule must end: one slow server may not hold a weekly run for hours.
MAX_BACKOFF_S = 60.0

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


class DeliveryError(Exception):
    """One failed delivery attempt; ``retryable`` is False when repeating cannot help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class ChannelResult:
    """What happened on one channel: ``sent``, ``failed`` (after ``attempts``) or ``blocked``."""

    channel: str
    status: ChannelStatus
    attempts: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the channel delivered."""
        return self.status == "sent"

    def describe(self) -> str:
        """One line for the run's output."""
        tries = f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}"
        if self.status == "sent":
            return f"{self.channel}: sent ({tries})"
        if self.status == "blocked":
            return f"{self.channel}: not sent: {self.error}"
        return f"{self.channel}: FAILED after {tries}: {self.error}"


def one_line(text: str, max_len: int = 300) -> str:
    """``text`` with control characters and line breaks as spaces, capped at ``max_len``."""
    flat = _CONTROL.sub(" ", text).strip()
    return flat if len(flat) <= max_len else flat[: max_len - 1] + "…"


@dataclass(frozen=True)
class RetryPolicy:
    """How a channel retries.

    At most ``1 + retries`` attempts, pauses doubling from ``backoff_s`` up to MAX_BACKOFF_S;
    ``sleep`` is replaceable in tests.
    """

    retries: int = 3
    backoff_s: float = 1.0
    sleep: Callable[[float], None] = time.sleep

    def run(self, channel: str, attempt: Callable[[], None]) -> ChannelResult:
        """Run ``attempt`` under this policy."""
        return with_retries(
            channel, attempt, retries=self.retries, backoff_s=self.backoff_s, sleep=self.sleep
        )


def with_retries(
    channel: str,
    attempt: Callable[[], None],
    *,
    retries: int,
    backoff_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> ChannelResult:
    """Run ``attempt`` until it returns, at most ``1 + retries`` times, doubling the pause.

    Only :class:`DeliveryError` is caught: anything else is a bug and must surface as one.
    """
    if retries < 0 or backoff_s < 0:
        raise ValueError("retries and backoff_s must be >= 0")
    error = ""
    for n in range(1, retries + 2):
        try:
            attempt()
        except DeliveryError as exc:
            error = str(exc)
            if not exc.retryable or n > retries:
                return ChannelResult(channel, "failed", n, error)
            sleep(min(backoff_s * 2 ** (n - 1), MAX_BACKOFF_S))
        else:
            return ChannelResult(channel, "sent", n)
    raise AssertionError("unreachable")  # pragma: no cover
