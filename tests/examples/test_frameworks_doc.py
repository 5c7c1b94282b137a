"""docs/frameworks.md quotes the example hosts line for line, so it cannot drift from them."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGE = DOCS / "frameworks.md"
EXAMPLES = {
    "examples/django_host/asgi.py",
    "examples/fastapi_host/app.py",
    "examples/flask_host/app.py",
    "examples/starlette_host/app.py",
}

# A quote: the line naming (and linking) the file, a blank line, the code block.
QUOTE = re.compile(r"^From \[`([^`]+)`\]\(([^)]+)\):\n\n```python\n(.*?)^```$", re.M | re.S)


def quotes() -> list[tuple[str, str, str]]:
    return QUOTE.findall(PAGE.read_text(encoding="utf-8"))


def test_every_python_block_on_the_page_is_a_quote_of_an_example() -> None:
    blocks = re.findall(r"^```python$", PAGE.read_text(encoding="utf-8"), flags=re.M)
    assert len(quotes()) == len(blocks) > 0


def test_every_quote_is_whole_lines_of_the_file_it_names() -> None:
    for named, link, code in quotes():
        assert link == named, f"the link of {named} leads to {link}"
        source = (DOCS / named).read_text(encoding="utf-8")
        assert "\n" + code in "\n" + source, f"docs/frameworks.md quotes {named} wrongly:\n{code}"


def test_the_page_shows_each_hosts_authenticator_and_mount() -> None:
    shown: dict[str, str] = {}
    for named, _link, code in quotes():
        shown[named] = shown.get(named, "") + code
    assert set(shown) >= EXAMPLES
    for named in EXAMPLES:
        assert "def current_user(" in shown[named], named
        assert "def make_app(" in shown[named], named
        assert "lifespan_context(integrations)" in shown[named], named
