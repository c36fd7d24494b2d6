"""The one runner: validate a DataFrame (Spark or pandas) against a GX suite.

A :class:`Runner` holds ONE ephemeral GX context with two data sources, each with one dataframe
asset and one whole-dataframe batch definition: Spark (in the caller's SparkSession) for the
week's events, pandas for small tables (the marts, the ledger, the consistency row). Every
suite of a run goes through them (a context costs seconds to warm up). GX's Spark engine runs
one or more Spark jobs per expectation (about 1.5 s a suite on a one-row table); the pandas
engine takes milliseconds, with the same outcomes (tested suite by suite). Progress bars and
usage statistics are switched off in the context's config, so nothing reaches the job's logs
or the network.

Results come back typed (:class:`SuiteOutcome`), with every expectation's severity:
``critical`` failures make a suite fail, ``warning`` failures are findings only.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import great_expectations as gx
import pandas as pd
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from pyspark.sql import DataFrame

CRITICAL = "critical"
WARNING = "warning"
SEVERITIES = (CRITICAL, WARNING)
DATA_DOCS_SITE = "kaudit_data_docs"
# observed values are for people: a few examples of bad values, never a whole column
MAX_EXAMPLES = 5
COUNTS_ONLY: dict[str, Any] = {"result_format": "BASIC", "partial_unexpected_count": 0}
WITH_EXAMPLES: dict[str, Any] = {"result_format": "BASIC", "partial_unexpected_count": MAX_EXAMPLES}
_DATASOURCE, _ASSET, _BATCH = "kaudit_spark", "kaudit_dataframe", "whole_dataframe"
_PANDAS_DATASOURCE = "kaudit_pandas"
Frame: TypeAlias = DataFrame | pd.DataFrame


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's result: what was checked, on which column, what was seen."""

    expectation: str
    column: str | None
    observed: Any
    success: bool
    severity: str
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form read by the report (validation.json)."""
        return {
            "expectation": self.expectation,
            "column": self.column,
            "observed": self.observed,
            "success": self.success,
            "severity": self.severity,
        }


@dataclass(frozen=True)
class SuiteOutcome:
    """A suite's result; ``success`` is false only when a critical expectation failed."""

    suite: str
    success: bool
    results: tuple[ExpectationOutcome, ...]

    def failures(self, severity: str | None = None) -> list[ExpectationOutcome]:
        """Failed expectations, optionally of one severity only."""
        return [
            r
            for r in self.results
            if not r.success and (severity is None or r.severity == severity)
        ]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form read by the report (one entry of validation.json's ``suites``)."""
        return {
            "suite": self.suite,
            "success": self.success,
            "results": [r.to_dict() for r in self.results],
        }


def _plain(value: Any) -> Any:
    """Python numbers for numpy scalars (the pandas engine's values); text for the rest."""
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, dt.datetime):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    return str(value)


def _json_safe(value: Any) -> Any:
    """Plain JSON values: numbers, datetimes and other objects as text, NaN/inf as null."""
    text = json.dumps(value, default=_plain, allow_nan=True)
    loaded = json.loads(text)
    return _drop_nan(loaded)


def _drop_nan(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_drop_nan(v) for v in value]
    if isinstance(value, dict):
        return {k: _drop_nan(v) for k, v in value.items()}
    return value


def observed_value(result: dict[str, Any]) -> Any:
    """What GX saw: the aggregate's value, else the count and examples of bad values."""
    if "observed_value" in result:
        return _json_safe(result["observed_value"])
    if "unexpected_count" in result:
        return _json_safe(
            {
                "unexpected_count": result["unexpected_count"],
                "element_count": result.get("element_count"),
                "examples": list(result.get("partial_unexpected_list") or [])[:MAX_EXAMPLES],
            }
        )
    return _json_safe(result) or None


def _column(kwargs: dict[str, Any]) -> str | None:
    if kwargs.get("column") is not None:
        return str(kwargs["column"])
    for many in ("column_list",):
        if kwargs.get(many):
            return ", ".join(str(c) for c in kwargs[many])
    pair = [kwargs.get(k) for k in ("column_A", "column_B")]
    if all(pair):
        return ", ".join(str(c) for c in pair)
    return None


def _severity(config: Any) -> str:
    value = getattr(config, "severity", None)
    value = getattr(value, "value", value)
    meta_value = (getattr(config, "meta", None) or {}).get("severity")
    chosen = str(meta_value or value or CRITICAL).lower()
    # GX also knows "info": for the report anything not critical is a warning
    return chosen if chosen in SEVERITIES else WARNING


def context_config(data_docs_dir: Path | None = None) -> DataContextConfig:
    """Ephemeral config: in-memory stores, no progress bars, no usage statistics.

    With ``data_docs_dir``, one file-system Data Docs site is rendered there.
    """
    sites = None
    if data_docs_dir is not None:
        sites = {
            DATA_DOCS_SITE: {
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(data_docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        }
    return DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites=sites or {},
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )


class Runner:
    """One ephemeral GX context and Spark data source, reused for every suite of a run.

    The DataFrames validated belong to the caller's SparkSession (GX's Spark engine picks up
    the active session; it builds none of its own when one exists).
    """

    def __init__(self, data_docs_dir: Path | None = None) -> None:
        self.data_docs_dir = data_docs_dir
        self.context = gx.get_context(
            mode="ephemeral", project_config=context_config(data_docs_dir)
        )
        # persist=False: the caller decides what is cached; GX must not pin every batch
        source = self.context.data_sources.add_spark(_DATASOURCE, persist=False)
        asset = source.add_dataframe_asset(_ASSET)
        self.batch_definition = asset.add_batch_definition_whole_dataframe(_BATCH)
        local = self.context.data_sources.add_pandas(_PANDAS_DATASOURCE).add_dataframe_asset(_ASSET)
        self.pandas_batch_definition = local.add_batch_definition_whole_dataframe(_BATCH)
        self._names: set[str] = set()

    def validate(self, df: Frame, suite: gx.ExpectationSuite) -> SuiteOutcome:
        """Validate ``df`` against ``suite``; a suite name may be validated more than once.

        The first pass only counts bad values: listing examples costs one more Spark job per
        expectation. Only the expectations that failed are then run again, with examples (each
        expectation run costs one or more Spark jobs); their results replace the first pass's.
        """
        df = _narrow(df, suite)
        first, keys = self._run(df, suite, COUNTS_ONLY)
        failed = {key for key, r in zip(keys, first.results, strict=True) if not r.success}
        if not failed:
            return first
        again = gx.ExpectationSuite(
            name=suite.name,
            expectations=[
                e.copy(update={"id": None})
                for e in suite.expectations
                if config_key(e.configuration) in failed
            ],
        )
        second, second_keys = self._run(df, again, WITH_EXAMPLES)
        with_examples = dict(zip(second_keys, second.results, strict=True))
        if set(with_examples) != failed:
            raise RuntimeError(f"suite {suite.name}: the second pass ran other expectations")
        results = tuple(
            with_examples.get(key, r) for key, r in zip(keys, first.results, strict=True)
        )
        return SuiteOutcome(suite.name, _suite_success(results), results)

    def _run(
        self, df: Frame, suite: gx.ExpectationSuite, result_format: dict[str, Any]
    ) -> tuple[SuiteOutcome, list[str]]:
        if suite.name in self._names:
            # the definition first: GX cannot load (so cannot delete) one whose suite is gone
            self.context.validation_definitions.delete(suite.name)
            self.context.suites.delete(suite.name)
        self._names.add(suite.name)
        added = self.context.suites.add(suite)
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(
                name=suite.name,
                data=self.pandas_batch_definition
                if isinstance(df, pd.DataFrame)
                else self.batch_definition,
                suite=added,
            )
        )
        result = definition.run(batch_parameters={"dataframe": df}, result_format=result_format)
        return outcome(suite.name, result), [
            config_key(er.expectation_config) for er in result.results
        ]

    def build_data_docs(self) -> Path | None:
        """Render the Data Docs of every validation run so far; the site's index.html."""
        if self.data_docs_dir is None:
            return None
        self.context.build_data_docs(site_names=[DATA_DOCS_SITE])
        return self.data_docs_dir / "index.html"


# what GX adds to a result's kwargs at run time; not part of what an expectation checks
_RUNTIME_KWARGS = frozenset({"batch_id", "result_format", "catch_exceptions", "include_config"})


def config_key(config: Any) -> str:
    """An expectation's identity in a suite: its type and what it checks (kwargs)."""
    kwargs = {k: v for k, v in dict(config.kwargs).items() if k not in _RUNTIME_KWARGS}
    return json.dumps([str(config.type), kwargs], sort_keys=True, default=str)


def suite_columns(suite: gx.ExpectationSuite) -> list[str]:
    """Every column an expectation of ``suite`` reads (row conditions aside)."""
    names: list[str] = []
    for expectation in suite.expectations:
        kwargs = expectation.configuration.kwargs
        for key in ("column", "column_A", "column_B"):
            if kwargs.get(key) is not None:
                names.append(str(kwargs[key]))
        names += [str(c) for c in kwargs.get("column_list") or []]
        condition = getattr(expectation, "row_condition", None)
        names += [str(c.name) for c in _condition_columns(condition)]
    return list(dict.fromkeys(names))


def _condition_columns(condition: Any) -> list[Any]:
    if condition is None or isinstance(condition, str):
        return []
    found = [getattr(condition, "column", None)]
    for part in getattr(condition, "conditions", None) or []:
        found += _condition_columns(part)
    return [c for c in found if c is not None and hasattr(c, "name")]


def _narrow(df: Frame, suite: gx.ExpectationSuite) -> Frame:
    """Only the columns the suite reads.

    GX re-reads the schema through py4j many times per expectation, and wide marts (maps,
    arrays of structs) make each read slower. When a column is missing the frame is left
    whole, so that GX reports the missing column.
    """
    wanted = suite_columns(suite)
    if not wanted or not set(wanted) <= set(df.columns):
        return df
    if isinstance(df, pd.DataFrame):
        return df[wanted]
    return df.select(*wanted)


def _error(info: Any) -> str | None:
    """The message of an exception GX caught (top level, or per failed metric)."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def outcome(suite_name: str, result: Any) -> SuiteOutcome:
    """Typed form of a GX ExpectationSuiteValidationResult."""
    rows = []
    for er in result.results:
        config = er.expectation_config
        raw = er.result or {}
        error = _error(er.exception_info)
        if error is not None:
            raw = {"error": error}
        rows.append(
            ExpectationOutcome(
                expectation=str(config.type),
                column=_column(dict(config.kwargs)),
                observed=observed_value(raw),
                success=bool(er.success),
                severity=_severity(config),
                description=config.description,
            )
        )
    return SuiteOutcome(suite=suite_name, success=_suite_success(rows), results=tuple(rows))


def _suite_success(results: Sequence[ExpectationOutcome]) -> bool:
    """A suite fails when a critical expectation failed; warnings are findings only."""
    return not any(not r.success and r.severity == CRITICAL for r in results)


def validate(df: Frame, suite: gx.ExpectationSuite) -> SuiteOutcome:
    """One-off validation with a fresh runner (a run of many suites should share a Runner)."""
    return Runner().validate(df, suite)


__all__ = [
    "CRITICAL",
    "WARNING",
    "ExpectationOutcome",
    "Runner",
    "SuiteOutcome",
    "context_config",
    "outcome",
    "validate",
]
