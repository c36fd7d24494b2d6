"""The driver JVM's JIT directives: Spark's generated classes are left to the C1 compiler."""

from __future__ import annotations

import re
from pathlib import Path

from jobs._session import add_jit_directives, diagnostic_command
from jobs.settings import spark_settings

GENERATED = "org/apache/spark/sql/catalyst/expressions/GeneratedClass*.*"


def _directives(spark) -> list[str]:
    """The JVM's directives, one text block per directive (the default one last)."""
    printed = diagnostic_command(spark, "compilerDirectivesPrint")
    return printed.split("Directive:")[1:]


def test_the_session_keeps_generated_classes_from_c2_once(spark):
    # the session fixture was built by get_spark, which adds the installed directives file
    blocks = _directives(spark)
    ours = [b for b in blocks if f"matching: {GENERATED}" in b]
    assert len(ours) == 1, blocks
    c2 = ours[0].split("c2 directives:")[1]
    assert re.search(r"\bExclude:true\b", c2)
    c1 = ours[0].split("c1 directives:")[1].split("c2 directives:")[0]
    assert re.search(r"\bExclude:false\b", c1)  # C1 still compiles them
    # asking again (get_spark on an existing session) adds nothing
    assert not add_jit_directives(spark, spark_settings().jit_directives)
    assert len(_directives(spark)) == len(blocks)


def test_no_directives_from_an_empty_setting_or_a_missing_file(spark, tmp_path):
    before = len(_directives(spark))
    assert not add_jit_directives(spark, "")
    assert not add_jit_directives(spark, str(tmp_path / "none.json"))
    assert len(_directives(spark)) == before


def test_the_installed_file_is_the_packaged_one():
    path = Path(spark_settings().jit_directives)
    assert path.is_file() and path.parent.name == "jobs"
    assert GENERATED in path.read_text(encoding="utf-8")


def test_the_session_jvm_runs_with_the_settings_inlining_bounds(spark):
    # C2's inlining is bounded (C2 compile time on 2 cores; bench/RESULTS.md, thirteenth
    # session): the flags of the settings reach the driver JVM as set, not HotSpot's defaults
    wanted = re.findall(r"-XX:(\w*Inline\w*)=(\d+)", spark_settings().java_options)
    assert {name for name, _ in wanted} == {"FreqInlineSize", "InlineSmallCode", "MaxInlineLevel"}
    flags = dict(re.findall(r"-XX:(\w+)=(\S+)", diagnostic_command(spark, "vmFlags")))
    assert {name: flags.get(name) for name, _ in wanted} == dict(wanted)
