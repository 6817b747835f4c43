"""The README's code blocks, as printed: what `test_readme.py` (the lake and ML recipes) and
`test_publish.py` (the PostgreSQL recipes) run."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    section: str
    line: int

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.language}, '{self.section}')"


def readme_blocks(*languages: str) -> list[Block]:
    """Every fenced block of `languages` in the README, with the heading it stands under."""
    text = README.read_text()
    headings = [(m.start(), m.group(1).strip()) for m in re.finditer(r"^#{2,4} (.+)$", text, re.MULTILINE)]
    blocks = []
    for match in _FENCE.finditer(text):
        if match.group(1) in languages:
            section = next((title for at, title in reversed(headings) if at < match.start()), "")
            line = text.count("\n", 0, match.start()) + 1
            blocks.append(Block(match.group(1), match.group(2), section, line))
    return blocks
