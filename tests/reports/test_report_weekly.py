from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import CHINESE, HOSTILE_FORMULA, HOSTILE_HTML, render_kwargs
from weasyprint.urls import FatalURLFetchingError

from reports.csvs import neutralise, to_csv
from reports.i18n import Messages
from reports.render import TemplateOnlyFetcher
from reports.verify import read_attachments, verify_report
from reports.weekly import TEMPLATE_DIR, render_weekly_report


def _text(pdf: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True)
    return out.stdout.decode("utf-8")


@pytest.fixture(scope="module")
def rendered(font, week_dir, tmp_path_factory):
    out = {}
    for lang in ("en", "zh-CN"):
        fetcher = TemplateOnlyFetcher(TEMPLATE_DIR)
        logger = logging.getLogger("weasyprint")
        records: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = records.append
        logger.addHandler(handler)
        try:
            result = render_weekly_report(
                week_dir, tmp_path_factory.mktemp(lang), fetcher=fetcher, **render_kwargs(lang)
            )
        finally:
            logger.removeHandler(handler)
        out[lang] = (result, fetcher, [r.getMessage() for r in records])
    return out


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_render_weekly_report_has_every_section(rendered, lang):
    text = " ".join(_text(rendered[lang][0].pdf).split())
    t = Messages(lang, "Asia/Shanghai")
    for n in range(1, 12):
        assert f"{n}. {t(f's{n}.title')}" in text or t(f"s{n}.title") in text, n
    assert t("status.not_observable") in text
    assert t("validation.none") in text


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_render_weekly_report_no_missing_glyphs_and_fetches_only_template_files(rendered, lang):
    result, fetcher, messages = rendered[lang]
    assert not [m for m in messages if ".notdef" in m], messages
    assert fetcher.attempts, "the stylesheet and font should have been fetched"
    root = TEMPLATE_DIR.resolve().as_uri()
    assert all(url.startswith(root + "/") for url in fetcher.attempts), fetcher.attempts
    fonts = subprocess.run(
        ["pdffonts", str(result.pdf)], capture_output=True, text=True, check=True
    ).stdout
    assert "Report-Sans" in fonts and "DejaVu" not in fonts


def test_render_weekly_report_hostile_strings_are_literal_text(rendered):
    text = _text(rendered["en"][0].pdf)
    flat = "".join(text.split())
    assert "".join(HOSTILE_HTML.split()) in flat
    assert HOSTILE_FORMULA in flat
    assert CHINESE in text


def test_render_weekly_report_attachments(rendered):
    result = rendered["en"][0]
    files = read_attachments(result.pdf)
    manifest = json.loads(files["manifest.json"])
    assert {
        "summary.json",
        "users.csv",
        "source_ips.csv",
        "crd_operations.csv",
        "resource_operations.csv",
        "evidence.csv",
        "detection-exec.csv",
        "detection-configmap-credentials.csv",
        "detection-secret-write.csv",
    } <= set(files)
    assert manifest["policy"]["sha256"] == "c3" * 32
    assert manifest["validation"]["status"] == "none"
    assert [e["evidence_sha256"] for e in manifest["evidence"]] == ["a1" * 32, "b2" * 32]
    outer = json.loads(result.manifest.read_text())
    assert outer["pdf"]["sha256"] == result.pdf_sha256
    assert "pdf" not in manifest
    users_csv = files["users.csv"].decode("utf-8-sig")
    assert "'" + HOSTILE_FORMULA.replace('"', '""') in users_csv
    assert CHINESE in users_csv


def test_render_weekly_report_is_byte_identical(font, week_dir, tmp_path, monkeypatch, rendered):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1795600800")
    again = render_weekly_report(week_dir, tmp_path / "again", **render_kwargs("en"))
    assert again.pdf.read_bytes() == rendered["en"][0].pdf.read_bytes()


def test_render_weekly_report_shows_failed_validation(font, week_dir, tmp_path):
    validation = {
        "success": False,
        "suites": [
            {
                "suite": "users_suite",
                "success": False,
                "results": [
                    {
                        "expectation": "expect_column_values_to_not_be_null",
                        "column": "user",
                        "observed": 1,
                        "success": False,
                        "severity": "critical",
                    }
                ],
            }
        ],
    }
    result = render_weekly_report(week_dir, tmp_path, **render_kwargs("en", validation=validation))
    text = _text(result.pdf)
    assert "expect_column_values_to_not_be_null" in text and "0 of 1 expectations passed" in text


def test_verify_report_passes_then_names_a_one_byte_change(rendered, tmp_path):
    result = rendered["en"][0]
    work = tmp_path / "r"
    work.mkdir()
    pdf = work / "report.pdf"
    shutil.copy(result.pdf, pdf)
    shutil.copy(result.manifest, work / "manifest.json")
    assert verify_report(pdf, None) == []
    data = bytearray(pdf.read_bytes())
    data[len(data) // 2] ^= 0x01
    pdf.write_bytes(bytes(data))
    problems = verify_report(pdf, None)
    assert problems and "report.pdf: sha256" in problems[0]


def test_verify_report_checks_the_evidence_store(rendered, tmp_path):
    home = tmp_path / "home"
    for sha in ("a1" * 32, "b2" * 32):
        (home / "evidence" / sha[:2]).mkdir(parents=True, exist_ok=True)
        (home / "evidence" / sha[:2] / sha).write_bytes(b"not the evidence")
    problems = verify_report(rendered["en"][0].pdf, home)
    assert any("kubernetes-m1.audit" in p and "does not hash" in p for p in problems)


def test_template_only_fetcher_refuses_outside_urls():
    fetcher = TemplateOnlyFetcher(TEMPLATE_DIR)
    for url in (
        "file:///etc/passwd",
        "http://x/",
        "data:text/plain,hi",
        (TEMPLATE_DIR / ".." / ".." / "weekly.py").resolve().as_uri(),
    ):
        with pytest.raises(FatalURLFetchingError):
            fetcher.fetch(url)
    assert fetcher.fetch((TEMPLATE_DIR / "report.css").as_uri()).read()


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_neutralise_prefixes_formula_starts(cell):
    assert neutralise(cell) == "'" + cell


def test_to_csv_keeps_numbers_and_plain_text():
    data = to_csv([{"a": -5, "b": "plain", "c": None}], ["a", "b", "c"]).decode("utf-8-sig")
    assert data.splitlines()[1] == "-5,plain,"
