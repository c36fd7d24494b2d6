from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.compute as pa_compute
import pytest
from report_week import CHINESE, HOSTILE_FORMULA, HOSTILE_HTML, render_kwargs, write_empty_week
from weasyprint import HTML
from weasyprint.formatting_structure import boxes
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import FatalURLFetchingError

from reports.csvs import neutralise, to_csv
from reports.figures import week_hours
from reports.i18n import LOCALE_DIR, Messages
from reports.render import TemplateOnlyFetcher, html_to_pdf, page_footer_css
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


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_chart_words_are_text_in_the_report_font(rendered, week_dir, lang):
    # matplotlib writes the charts' words as SVG text, not glyph outlines: WeasyPrint sets
    # them in the report's font (the PDF's only font, see above), and they can be searched
    result, _, _ = rendered[lang]
    t = Messages(lang, "Asia/Shanghai")
    flat = "".join(_text(result.pdf).split())
    tz = json.loads((week_dir / "summary.json").read_text())["timezone"]
    for key in ("chart.hour", "chart.success", "chart.failure"):
        words = t(key, tz=tz)
        assert "".join(words.split()) in flat, (key, words)


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
    assert manifest["attachments_capped"] == {}  # the fixture's lists are short
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


def _fixed_table_layout(html: str) -> tuple[int, list[str], list[str]]:
    """Laid out like the PDF, the cells of the fixed-layout tables: how many text boxes they
    hold, the texts that reach past their cell's content box, and the header and number
    cells that took more than one line."""
    document = HTML(
        string=html,
        base_url=str(TEMPLATE_DIR) + "/",
        url_fetcher=TemplateOnlyFetcher(TEMPLATE_DIR),
    ).render(font_config=FontConfiguration())
    checked, spilled, wrapped = 0, [], []
    for page in document.pages:
        for table in page._page_box.descendants():
            if not isinstance(table, boxes.TableBox):
                continue
            if "fixed" not in (table.element.get("class") or "").split():
                continue
            for cell in table.descendants():
                if not isinstance(cell, boxes.TableCellBox):
                    continue
                right = cell.content_box_x() + cell.width
                texts = [b for b in cell.descendants() if isinstance(b, boxes.TextBox)]
                checked += len(texts)
                spilled += [t.text for t in texts if t.position_x + t.width > right + 0.01]
                lines = [b for b in cell.descendants() if isinstance(b, boxes.LineBox)]
                numeric = "num" in (cell.element.get("class") or "").split()
                if len(lines) > 1 and (cell.element_tag == "th" or numeric):
                    wrapped.append(" | ".join(t.text for t in texts))
    return checked, spilled, wrapped


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_fixed_layout_tables_fit_their_text(font, week_dir, tmp_path, monkeypatch, lang):
    # the long tables take their column widths from the stylesheet, not from their content
    # (render time): nothing may run into the next column, and headers and counts keep to
    # one line
    pages: list[str] = []

    def keep_html(html, *args, **kwargs):
        pages.append(html)
        return html_to_pdf(html, *args, **kwargs)

    monkeypatch.setattr("reports.weekly.html_to_pdf", keep_html)
    render_weekly_report(week_dir, tmp_path / lang, **render_kwargs(lang))
    for table in ("catalogue", "resources", "operations", "ips", "users", "crd", "manifest"):
        assert f'<table class="fixed w-{table}">' in pages[0], table
    checked, spilled, wrapped = _fixed_table_layout(pages[0])
    assert checked > 100
    assert spilled == []
    assert wrapped == []


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


class _Text(str):
    """A str subclass: takes neutralise's general path, not the fast one for plain str."""


@pytest.mark.parametrize("cell", ["=1+1", "-x", "@a", "\tx", "\rx", "plain", "", "'=x", " =x"])
def test_neutralise_fast_path_for_plain_text_agrees_with_the_general_one(cell):
    assert neutralise(cell) == neutralise(_Text(cell))
    assert neutralise(cell) == ("'" + cell if cell[:1] in "=+-@\t\r" and cell else cell)


def test_neutralise_other_types():
    assert [neutralise(v) for v in (None, True, False, 7, -7, 1.5)] == [
        "",
        "true",
        "false",
        "7",
        "-7",
        "1.5",
    ]
    assert neutralise(["=x"]) == '["=x"]'


def test_to_csv_keeps_numbers_and_plain_text():
    data = to_csv([{"a": -5, "b": "plain", "c": None}], ["a", "b", "c"]).decode("utf-8-sig")
    assert data.splitlines()[1] == "-5,plain,"


FAILED_VALIDATION = {
    "success": False,
    "suites": [
        {
            "suite": "events_suite",
            "success": False,
            "results": [
                {
                    "expectation": "expect_column_values_to_not_be_null",
                    "column": "audit_id",
                    "observed": {
                        "element_count": 59998,
                        "unexpected_count": 3,
                        "examples": [HOSTILE_HTML],
                    },
                    "success": False,
                    "severity": "critical",
                },
                {
                    "expectation": "expect_column_values_to_be_unique",
                    "column": "line_no",
                    "observed": {"element_count": 59998, "unexpected_count": 0, "examples": []},
                    "success": True,
                    "severity": "critical",
                },
            ],
        },
        {
            "suite": "ledger_suite",
            "success": True,
            "results": [
                {
                    "expectation": "expect_column_max_to_be_between",
                    "column": "quarantined_share",
                    "observed": 0.25,
                    "success": False,
                    "severity": "warning",
                }
            ],
        },
    ],
}
COVERAGE_WITH_GAP = {
    "complete": False,
    "events": 70,
    "gaps": [
        {
            "master": "m2",
            "start": "2026-11-18T02:00:00+00:00",
            "end": "2026-11-18T09:00:00+00:00",
            "hours": 7,
            "cause": "collection failure",
        }
    ],
}
CUSTODY_HEAD = {"count": 42, "last_record_sha256": "0123456789abcdef" * 4, "updated_at": "x"}


def test_render_weekly_report_validation_summary_details_and_csv(font, week_dir, tmp_path):
    result = render_weekly_report(
        week_dir, tmp_path, **render_kwargs("en", validation=FAILED_VALIDATION)
    )
    text = " ".join(_text(result.pdf).split())
    cover = " ".join(_text(result.pdf).split("\f")[0].split())
    assert "Validation failed" in cover and "expect_column_values_to_not_be_null" in cover
    assert "1 of 3 expectations passed" in text
    assert "3 of 59,998 rows unexpected" in text and "0.25" in text
    assert "".join(HOSTILE_HTML.split()) in "".join(text.split())
    # a passed expectation is counted in its suite's row, not listed
    assert "expect_column_values_to_be_unique" not in text
    assert "element_count" not in text and "{'" not in text
    files = read_attachments(result.pdf)
    rows = files["validation.csv"].decode("utf-8-sig").splitlines()
    assert rows[0] == (
        "suite,expectation,column,severity,success,unexpected_count,element_count,observed"
    )
    assert len(rows) == 4
    assert rows[1].startswith(
        "events_suite,expect_column_values_to_not_be_null,audit_id,critical,false,3,59998,"
    )
    assert rows[3].endswith(",0.25")
    manifest = json.loads(files["manifest.json"])
    assert (
        manifest["attachments"]["validation.csv"]
        == hashlib.sha256(files["validation.csv"]).hexdigest()
    )


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_render_weekly_report_cover_coverage_custody_and_gaps(font, week_dir, tmp_path, lang):
    t = Messages(lang, "Asia/Shanghai")
    result = render_weekly_report(
        week_dir,
        tmp_path,
        **render_kwargs(lang, coverage=COVERAGE_WITH_GAP, custody_head=CUSTODY_HEAD),
    )
    pages = _text(result.pdf).split("\f")
    cover = " ".join(pages[0].split())
    assert t("coverage.gaps", n="1") in cover
    assert t("cover.custody_line", n="42", sha="0123456789abcdef") in cover
    assert "0123456789abcdef0" not in cover
    text = " ".join(" ".join(pages).split())
    assert t("cause.collection_failure") in text and "2026-11-18 10:00:00" in text
    assert t("footer.page_of", page=1, pages=len(pages) - 1) in cover  # pdftotext ends in \f


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_render_weekly_report_empty_week_says_so(font, tmp_path, lang):
    week = write_empty_week(tmp_path / "week")
    t = Messages(lang, "Asia/Shanghai")
    result = render_weekly_report(week, tmp_path / "out", **render_kwargs(lang, evidence=[]))
    pages = _text(result.pdf).split("\f")
    flat = [" ".join(p.split()) for p in pages]
    assert t("week.empty") in flat[0]
    assert t("week.empty") in flat[1] and t("s2.title") in flat[1]
    assert t("coverage.gaps", n="2") in flat[0]
    assert t("validation.none") in flat[0]
    assert t("cause.master_never_collected") in " ".join(flat)


def test_week_hours_follow_the_local_clock():
    shanghai = ZoneInfo("Asia/Shanghai")
    window = (datetime(2026, 11, 16, tzinfo=shanghai), datetime(2026, 11, 23, tzinfo=shanghai))
    hours = week_hours(window)
    assert (len(hours), hours[0], hours[-1]) == (168, "2026-11-16 00", "2026-11-22 23")
    berlin = ZoneInfo("Europe/Berlin")  # summer time starts on Sunday 2026-03-29
    dst = week_hours((datetime(2026, 3, 23, tzinfo=berlin), datetime(2026, 3, 30, tzinfo=berlin)))
    assert len(dst) == 167 and "2026-03-29 02" not in dst


def test_page_footer_keeps_the_translators_word_order():
    assert page_footer_css(Messages("en", "UTC")) == '"Page " counter(page) " of " counter(pages)'
    assert page_footer_css(Messages("zh-CN", "UTC")) == (
        '"第 " counter(page) " 页，共 " counter(pages) " 页"'
    )


def test_catalogues_hold_every_template_key_in_both_languages():
    template = (TEMPLATE_DIR / "report.html.j2").read_text(encoding="utf-8")
    used = set(re.findall(r'_\("([a-z0-9_.]+)"', template))
    keys = {}
    for code in ("en", "zh_CN"):
        po = (LOCALE_DIR / f"{code}.po").read_text(encoding="utf-8")
        keys[code] = set(re.findall(r'^msgid "(.+)"$', po, flags=re.M))
    # en may leave detection titles (det.*) to the catalogue of detections; zh must not
    assert keys["en"] <= keys["zh_CN"], keys["en"] - keys["zh_CN"]
    prefixes = {k for k in used if k.endswith(".")}  # _("sev." ~ severity) and the like
    assert used - prefixes <= keys["en"], used - prefixes - keys["en"]
    assert all(any(k.startswith(p) for k in keys["en"]) for p in prefixes)


def test_detection_attachments_are_capped_and_say_so(font, week_dir, tmp_path, monkeypatch):
    """A scan week's millions of findings: each detection CSV keeps its first rows, the
    manifest and the PDF say how many of how many, the mart keeps them all."""
    import pyarrow.parquet as pq

    import reports.weekly as weekly

    events = pq.read_table(week_dir / "important_events")
    counts: dict[str, int] = {}
    for det in events["detection_id"].to_pylist():
        counts[det] = counts.get(det, 0) + 1
    many = sorted(d for d, n in counts.items() if n > 1)
    assert many, "the fixture week needs a detection with more than one row"
    monkeypatch.setattr(weekly, "ATTACHMENT_ROWS", 1)
    result = render_weekly_report(week_dir, tmp_path / "capped", **render_kwargs("en"))
    files = read_attachments(result.pdf)
    manifest = json.loads(files["manifest.json"])
    assert manifest["attachments_capped"] == {
        f"detection-{d}.csv": {"rows": 1, "of": counts[d]} for d in many
    }
    for det in many:
        lines = files[f"detection-{det}.csv"].decode("utf-8-sig").splitlines()
        assert len(lines) == 2, (det, lines)  # header + the first row
        first = events.filter(pa_compute.field("detection_id") == det).slice(0, 1).to_pylist()[0]
        assert first["request_key"] in lines[1]
    for det in set(counts) - set(many):
        assert f"detection-{det}.csv" not in manifest["attachments_capped"]
    text = " ".join(_text(result.pdf).split())
    for det in many:
        assert f"detection-{det}.csv holds the first 1 of {counts[det]} rows" in text
    assert verify_report(result.pdf) == []


def test_public_ip_alert_list_is_capped_with_the_rest_in_the_attachment(week_dir, monkeypatch):
    """A scan from a thousand IPs: the alert table shows CAP of them, says how many more."""
    from reports import context
    from reports.weekly import build_week_context

    kw = render_kwargs("en")
    ctx = build_week_context(
        week_dir, cluster=kw["cluster"], week=kw["week"], t=Messages("en", kw["timezone"]),
        evidence=kw["evidence"], previous_summary=None, validation=None,
    )  # fmt: skip
    alerting = context.alert_ips(ctx["all_ips"])
    assert len(alerting) >= 1, "the fixture week needs a public IP over the alert threshold"
    assert ctx["alerts"] == {"rows": alerting, "more": 0, "file": "source_ips.csv"}
    monkeypatch.setattr(context, "CAP", 0)
    ctx = build_week_context(
        week_dir, cluster=kw["cluster"], week=kw["week"], t=Messages("en", kw["timezone"]),
        evidence=kw["evidence"], previous_summary=None, validation=None,
    )  # fmt: skip
    assert ctx["alerts"] == {"rows": [], "more": len(alerting), "file": "source_ips.csv"}
