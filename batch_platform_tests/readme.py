"""The code blocks of the README and of the pages under `docs/`, as printed: what `test_readme.py`
(the lake and ML recipes) and `test_publish.py` (the PostgreSQL recipes) run.

A block is a fence opened by ```` ```<language> ```` at the start of a line; its section is the last
heading (`#` … `####`) above it outside any fence, so a `# comment` inside a code block is never
taken for one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
_FENCE = re.compile(r"^```(\w*)\s*$")
_HEADING = re.compile(r"^#{1,4} (.+)$")


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    file: str
    """The page, relative to the repository: `README.md`, `docs/reading.md`."""
    section: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line} ({self.language}, '{self.section}')"


def doc_pages() -> list[Path]:
    """The README, then every page under `docs/` in name order."""
    return [README, *sorted(DOCS.glob("*.md"))]


def page_blocks(page: Path) -> list[Block]:
    """Every fenced block of `page`, in order, with the heading it stands under."""
    name = page.relative_to(ROOT).as_posix()
    blocks: list[Block] = []
    section, fence, start, body = "", None, 0, []
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        opened = _FENCE.match(line)
        if fence is None:
            if opened:
                fence, start, body = opened.group(1), number, []
            elif heading := _HEADING.match(line):
                section = heading.group(1).strip()
        elif line.rstrip() == "```":
            blocks.append(Block(fence, "".join(f"{text}\n" for text in body), name, section, start))
            fence = None
        else:
            body.append(line)
    if fence is not None:
        raise ValueError(f"{name}:{start}: a code block is never closed")
    return blocks


def doc_blocks(*languages: str) -> list[Block]:
    """Every fenced block of `languages` in the README and the pages under `docs/`."""
    return [block for page in doc_pages() for block in page_blocks(page) if block.language in languages]
