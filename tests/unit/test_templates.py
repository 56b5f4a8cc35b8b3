"""The pages pass the Content-Security-Policy every service sends
(``ates.platform.headers``): no script of any kind, no inline style."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import ates

TEMPLATES = sorted(Path(ates.__file__).parent.rglob("templates/**/*.html"))
FORBIDDEN = {
    "a <script> (script-src 'none')": re.compile(r"<script\b", re.IGNORECASE),
    "a <style> element (style-src 'self')": re.compile(r"<style\b", re.IGNORECASE),
    "a style attribute (style-src 'self')": re.compile(r"\sstyle\s*=", re.IGNORECASE),
    "an inline event handler": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "a javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}


def test_there_are_templates_to_check() -> None:
    assert len(TEMPLATES) > 10


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_template_needs_nothing_the_policy_forbids(template: Path) -> None:
    text = template.read_text()
    found = [what for what, pattern in FORBIDDEN.items() if pattern.search(text)]
    assert not found, f"{template} has {', '.join(found)}"
