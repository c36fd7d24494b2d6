"""Entry points of the evidence package: ``kaudit collect`` and ``kaudit verify``."""

from __future__ import annotations

from jobs.evidence.collect import MasterResult, collect
from jobs.evidence.custody import verify_custody
from jobs.settings import Config, Layout


def run_collect(config: Config, layout: Layout, parallel: int = 4) -> list[MasterResult]:
    """Collect every master of ``config`` into the home's evidence store; one result each."""
    return collect(config, layout, parallel=parallel)


def run_verify(layout: Layout) -> list[str]:
    """Problems in the custody chain or the evidence store; empty when all verifies."""
    return verify_custody(layout)
