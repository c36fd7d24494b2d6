"""Small builders of GX expectations shared by the suites (one place for the GX verbs)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from great_expectations.expectations.core.expect_column_max_to_be_between import (
    ExpectColumnMaxToBeBetween,
)
from great_expectations.expectations.core.expect_column_min_to_be_between import (
    ExpectColumnMinToBeBetween,
)
from great_expectations.expectations.core.expect_column_pair_values_a_to_be_greater_than_b import (
    ExpectColumnPairValuesAToBeGreaterThanB,
)
from great_expectations.expectations.core.expect_column_values_to_be_between import (
    ExpectColumnValuesToBeBetween,
)
from great_expectations.expectations.core.expect_column_values_to_be_in_set import (
    ExpectColumnValuesToBeInSet,
)
from great_expectations.expectations.core.expect_column_values_to_be_null import (
    ExpectColumnValuesToBeNull,
)
from great_expectations.expectations.core.expect_column_values_to_be_unique import (
    ExpectColumnValuesToBeUnique,
)
from great_expectations.expectations.core.expect_column_values_to_not_be_null import (
    ExpectColumnValuesToNotBeNull,
)
from great_expectations.expectations.core.expect_compound_columns_to_be_unique import (
    ExpectCompoundColumnsToBeUnique,
)
from great_expectations.expectations.expectation import Expectation
from great_expectations.expectations.metadata_types import FailureSeverity

from expectations.runner import CRITICAL


def not_null(*columns: str, severity: str = CRITICAL) -> list[Expectation]:
    """Each column is never null."""
    return [
        ExpectColumnValuesToNotBeNull(column=c, severity=FailureSeverity(severity)) for c in columns
    ]


def is_null(column: str, description: str, severity: str = CRITICAL) -> Expectation:
    """A check column (null = fine, text = what is wrong) is null on every row."""
    return ExpectColumnValuesToBeNull(
        column=column, severity=FailureSeverity(severity), description=description
    )


def in_set(column: str, values: Iterable[Any], severity: str = CRITICAL) -> Expectation:
    """Every non-null value of ``column`` is one of ``values``."""
    return ExpectColumnValuesToBeInSet(
        column=column, value_set=sorted(values), severity=FailureSeverity(severity)
    )


def non_negative(*columns: str) -> list[Expectation]:
    """Counts: never below zero (nulls are left to not_null)."""
    return [
        ExpectColumnValuesToBeBetween(column=c, min_value=0, severity=FailureSeverity(CRITICAL))
        for c in columns
    ]


def rates(*columns: str) -> list[Expectation]:
    """Shares: within [0, 1]."""
    return [
        ExpectColumnValuesToBeBetween(
            column=c, min_value=0, max_value=1, severity=FailureSeverity(CRITICAL)
        )
        for c in columns
    ]


def unique(*columns: str) -> Expectation:
    """The key: one column unique, or the combination of several."""
    if len(columns) == 1:
        return ExpectColumnValuesToBeUnique(column=columns[0], severity=FailureSeverity(CRITICAL))
    return ExpectCompoundColumnsToBeUnique(
        column_list=list(columns), severity=FailureSeverity(CRITICAL)
    )


def at_most(part: str, whole: str) -> Expectation:
    """Row by row, ``part`` <= ``whole`` (e.g. failures <= requests)."""
    return ExpectColumnPairValuesAToBeGreaterThanB(
        column_A=whole,
        column_B=part,
        or_equal=True,
        ignore_row_if="either_value_is_missing",
        severity=FailureSeverity(CRITICAL),
    )


def zero(column: str, description: str, severity: str = CRITICAL) -> Expectation:
    """A one-row check column (a difference or a count of mismatches) equals 0."""
    return ExpectColumnMaxToBeBetween(
        column=column,
        min_value=0,
        max_value=0,
        severity=FailureSeverity(severity),
        description=description,
    )


def at_least(
    column: str, minimum: float, description: str, severity: str = CRITICAL
) -> Expectation:
    """A one-row measure is at least ``minimum``."""
    return ExpectColumnMinToBeBetween(
        column=column,
        min_value=minimum,
        severity=FailureSeverity(severity),
        description=description,
    )


def at_most_value(
    column: str, maximum: float, description: str, severity: str = CRITICAL
) -> Expectation:
    """Every value of ``column`` is at most ``maximum``."""
    return between(column, None, maximum, description, severity)


def between(
    column: str,
    minimum: float | None,
    maximum: float | None,
    description: str | None = None,
    severity: str = CRITICAL,
    **kwargs: Any,
) -> Expectation:
    """Every value of ``column`` within [minimum, maximum] (``kwargs``: e.g. row_condition)."""
    return ExpectColumnValuesToBeBetween(
        column=column,
        min_value=minimum,
        max_value=maximum,
        severity=FailureSeverity(severity),
        description=description,
        **kwargs,
    )


def not_null_where(column: str, row_condition: Any, description: str) -> Expectation:
    """``column`` is never null on the rows ``row_condition`` (a GX Condition) selects."""
    return ExpectColumnValuesToNotBeNull(
        column=column,
        row_condition=row_condition,
        severity=FailureSeverity(CRITICAL),
        description=description,
    )


def flatten(*parts: Expectation | Sequence[Expectation]) -> list[Expectation]:
    """Expectations and lists of them, as one list (suites read top-down)."""
    out: list[Expectation] = []
    for part in parts:
        if isinstance(part, Expectation):
            out.append(part)
        else:
            out.extend(part)
    return out
