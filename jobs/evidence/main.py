"""Entry points of the evidence package: ``kaudit collect`` and ``kaudit verify``."""

from __future__ import annotations

from jobs.evidence.collect import MasterResult, collect
from jobs.evidence.verify import VerifyResult, verify_home
from jobs.settings import Config, Layout, existing_home


def run_collect(config: Config, layout: Layout, parallel: int = 4) -> list[MasterResult]:
    """Collect every master of ``config`` into the home's evidence store; one result each."""
    return collect(config, layout, parallel=parallel)


def run_verify(layout: Layout) -> VerifyResult:
    """Verify the custody chain, the evidence store and every custody head of the home.

    Raises:
        HomeError: the home does not exist ("no kaudit home at PATH").
    """
    existing_home(layout.home)
    return verify_home(layout)
