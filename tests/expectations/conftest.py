"""One GX runner (ephemeral context + Spark data source) for all expectation tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def runner(spark):
    from expectations.runner import Runner

    return Runner()


def failed(outcome, severity=None):
    """{(expectation, column)} of the failed results, optionally of one severity."""
    return {(r.expectation, r.column) for r in outcome.failures(severity)}
