"""The JVM's class-data-sharing archive (jobs.cds): used when intact, never when damaged."""

from __future__ import annotations

import re
from pathlib import Path

from jobs._session import cds_intact, cds_size_file, diagnostic_command, java_options
from jobs.cds import _maps
from jobs.settings import SparkSettings, spark_settings


def _archive(tmp_path: Path, data: bytes, recorded: int | None) -> Path:
    archive = tmp_path / "classes.jsa"
    archive.write_bytes(data)
    if recorded is not None:
        cds_size_file(archive).write_text(f"{recorded}\n", encoding="ascii")
    return archive


def test_an_archive_is_used_only_with_the_size_it_was_made_with(tmp_path):
    whole = _archive(tmp_path, b"x" * 100, recorded=100)
    settings = SparkSettings(java_options="-Xfoo", cds_archive=str(whole))
    assert cds_intact(whole)
    assert java_options(settings).startswith(f"-Xfoo -XX:SharedArchiveFile={whole} ")

    cds_size_file(whole).write_text("4096\n", encoding="ascii")  # cut short since it was made
    assert not cds_intact(whole)
    assert java_options(settings) == "-Xfoo"

    cds_size_file(whole).unlink()  # never finished (no size recorded)
    assert not cds_intact(whole)
    assert java_options(settings) == "-Xfoo"

    assert java_options(SparkSettings(java_options="-Xfoo", cds_archive="")) == "-Xfoo"
    missing = SparkSettings(java_options="-Xfoo", cds_archive=str(tmp_path / "none.jsa"))
    assert java_options(missing) == "-Xfoo"


def test_the_installed_archive_is_intact_and_the_session_maps_it(spark):
    # `make install` (which `make test` runs first) builds it into the virtualenv
    archive = Path(spark_settings().cds_archive)
    assert cds_intact(archive), f"{archive}: run `make install` (python -m jobs.cds)"
    options = spark.sparkContext.getConf().get("spark.driver.extraJavaOptions")
    assert f"-XX:SharedArchiveFile={archive}" in options
    assert re.search(r"-Xlog:cds=off", options)


def test_a_damaged_archive_is_found_before_it_is_kept(tmp_path):
    # HotSpot crashes (SIGBUS) on a truncated archive instead of ignoring it: the builder
    # starts a JVM with the new archive and keeps it only when that JVM ran
    archive = Path(spark_settings().cds_archive)
    assert _maps(archive)
    with archive.open("rb") as fh:
        cut = _archive(tmp_path, fh.read(100_000), recorded=None)
    assert not _maps(cut)
    assert not list(tmp_path.glob("hs_err*"))  # the crash report stays in a temporary dir


def test_the_session_jvm_maps_the_archive_with_its_own_options(spark):
    # the archive is made under the settings' java options (inlining, collector); a flag it
    # cannot be used with would leave only the JDK's own archive (~13 MB) mapped
    archive = Path(spark_settings().cds_archive)
    info = diagnostic_command(spark, "vmInfo")
    mapped = re.search(r"CDS archive\(s\) mapped at: .*?size (\d+)", info)
    assert mapped, info[:2000]
    assert int(mapped.group(1)) >= archive.stat().st_size
