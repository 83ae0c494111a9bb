"""Every relative link of the README and of ``docs/`` reaches an existing file, and every
``#anchor`` a heading of its target (GitHub's slugs)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from contract.defaults import REPO_ROOT

DOCUMENTS = sorted([REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md")])

_FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, mailto:, ...


def _prose(text: str) -> str:
    """``text`` without fenced code blocks (their ``#`` lines are no headings)."""
    return _FENCE.sub("", text)


def links(text: str) -> list[str]:
    """The targets of the inline and reference links of a markdown text, outside code."""
    prose = _prose(text)
    prose = _CODE_SPAN.sub("x", prose)  # a link's text may hold code; code holds no link
    return _INLINE_LINK.findall(prose) + _REFERENCE.findall(prose)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its rendered text in lower case, punctuation dropped,
    spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


@cache
def anchors(document: Path) -> frozenset[str]:
    """The anchors of a markdown file's headings (a repeated one gets ``-1``, ``-2``, ...)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in _HEADING.findall(_prose(document.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def test_slugs_are_githubs() -> None:
    assert slug("Local infrastructure (`scripts/stack.py`, `infra/`)") == (
        "local-infrastructure-scriptsstackpy-infra"
    )
    assert slug("The image and the pod, run (`make image-test`)") == (
        "the-image-and-the-pod-run-make-image-test"
    )
    assert slug("`make run`") == "make-run"
    assert slug("Shared by the daemon and the web workers") == (
        "shared-by-the-daemon-and-the-web-workers"
    )


def test_links_skip_code_and_find_every_form() -> None:
    text = (
        "[a](a.md) ![b](img/b.png)\n[c\nd](c.md#x 'no') `[e](e.md)`\n"
        "```sh\n[f](f.md)\n```\n[g]: g.md\n[h](https://example.org/h)\n"
    )
    assert links(text) == ["a.md", "img/b.png", "c.md#x", "https://example.org/h", "g.md"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_relative_links_resolve(document: Path) -> None:
    broken = []
    for target in links(document.read_text()):
        if _EXTERNAL.match(target):
            continue
        path, _, anchor = target.partition("#")
        file = (document.parent / path).resolve() if path else document
        if not file.exists():
            broken.append(f"{target}: no {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.name}")
    assert not broken, f"{document.name}: " + "; ".join(broken)
