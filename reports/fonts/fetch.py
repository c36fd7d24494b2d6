"""Fetch the report's CJK font (Noto Sans CJK SC, SIL OFL 1.1) from the PyPI package mplfonts.

Run by ``make install``::

    python -m reports.fonts.fetch [--dest DIR] [--cache DIR]

Steps: ``pip download --no-deps mplfonts==0.0.11`` (into ``--cache`` or a temporary folder),
check the wheel's pinned sha256, extract ``NotoSansCJKsc-Regular.otf``, check the font's pinned
sha256 and write it into the weekly template's ``fonts/`` folder atomically, where the report's
``@font-face`` and the charts find it. Idempotent: a font already present with the right hash is
left alone. mplfonts' own code is never imported. The font covers Latin, Greek, Cyrillic and
CJK, so one file renders every script an audit field is likely to hold.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import zipfile
from pathlib import Path

from jobs.digest import download_pinned_wheel, sha256_file

PACKAGE = "mplfonts"
VERSION = "0.0.11"
WHEEL_NAME = "mplfonts-0.0.11-py3-none-any.whl"
WHEEL_SHA256 = "b5e05ba7fd9a59cae48d1db41f657f50e6765e6f04b8d78504438b93a66b6e13"
MEMBER = "mplfonts/fonts/NotoSansCJKsc-Regular.otf"
FONT_NAME = "NotoSansCJKsc-Regular.otf"
FONT_SHA256 = "1652500938055a232cfbfa321de6ebaadfc5635dd9f75e369bc991d14a6512dd"
DEFAULT_DEST = Path(__file__).resolve().parents[1] / "templates" / "weekly" / "fonts"


class FontFetchError(RuntimeError):
    """A download or hash problem; nothing half-written is left behind."""


def font_path(dest: Path = DEFAULT_DEST) -> Path:
    """Where the bundled font lives."""
    return dest / FONT_NAME


def font_is_present(dest: Path = DEFAULT_DEST) -> bool:
    """True when the font is in ``dest`` with its pinned hash."""
    path = font_path(dest)
    return path.is_file() and sha256_file(path) == FONT_SHA256


def _download(cache: Path) -> Path:
    return download_pinned_wheel(PACKAGE, VERSION, WHEEL_NAME, WHEEL_SHA256, cache, FontFetchError)


def _extract(wheel: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(MEMBER) as src, tmp.open("wb") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                dst.write(chunk)
        actual = sha256_file(tmp)
        if actual != FONT_SHA256:
            raise FontFetchError(f"{MEMBER}: sha256 {actual} is not the pinned {FONT_SHA256}")
        tmp.chmod(0o644)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def fetch(dest: Path = DEFAULT_DEST, cache: Path | None = None) -> str:
    """Make ``dest`` hold the verified font; returns "present" or "written"."""
    if font_is_present(dest):
        return "present"
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        _extract(_download(cache), font_path(dest))
    else:
        with tempfile.TemporaryDirectory(prefix="kaudit-fonts-") as tmp:
            _extract(_download(Path(tmp)), font_path(dest))
    return "written"


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: 0 when the font is in place, 1 with the reason otherwise."""
    parser = argparse.ArgumentParser(prog="python -m reports.fonts.fetch")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="keep the downloaded wheel here (default: a temporary folder)",
    )
    args = parser.parse_args(argv)
    try:
        status = fetch(args.dest, args.cache)
    except FontFetchError as exc:
        print(f"font fetch failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"{status:8} {font_path(args.dest)} (Noto Sans CJK SC, SIL OFL 1.1, via {PACKAGE} "
        f"{VERSION})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
