from __future__ import annotations

import re
from pathlib import Path

from jobs.synth import planted_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_shows_the_planted_table_as_the_data_says():
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- planted:start -->\n(.*?)<!-- planted:end -->", text, re.S)
    assert block, "README lost its planted-table markers"
    assert block.group(1) == planted_markdown()


def test_readme_first_screen_has_the_two_commands():
    first_screen = "\n".join(README.read_text(encoding="utf-8").splitlines()[:15])
    assert "make demo" in first_screen and "make test" in first_screen
