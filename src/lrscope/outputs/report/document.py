"""The report as a format-free document: sections of paragraphs, tables, figures and code.

The Markdown and HTML writers render the same :class:`Document`; all text in it is plain
(unescaped) text, and each writer escapes it for its own format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]
    # indices of rows that are predictions, not measurements: each writer sets them apart
    predicted: tuple[int, ...] = ()


@dataclass(frozen=True)
class FigureRef:
    path: Path       # relative to the report's directory
    caption: str
    alt: str = ""    # short text for screen readers and broken images; caption when empty

    @property
    def alt_text(self) -> str:
        return self.alt or self.caption


@dataclass(frozen=True)
class Code:
    text: str


Block = Paragraph | Table | FigureRef | Code


@dataclass
class Section:
    title: str
    level: int                       # 2 = a run, 3 = a part of a run
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> Section:
        self.blocks.extend(blocks)
        return self


@dataclass
class Document:
    title: str
    intro: list[Paragraph] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    @property
    def figures(self) -> list[FigureRef]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, FigureRef)]
