"""Render a report :class:`~lrscope.outputs.report.document.Document` as Markdown (``report.md``).

Figures are linked as files under ``figures/``. Text from configs is escaped: ``<``, ``>`` and
``&`` as HTML entities (Markdown renderers pass raw HTML through) and ``|`` inside tables.

>>> from lrscope.outputs.report.document import Document, Paragraph, Section, Table
>>> doc = Document("T", sections=[Section("S <b>", 2).add(Paragraph("a|b"),
...                                Table(["x"], [["<script>"]]))])
>>> print(render(doc))
# T
<BLANKLINE>
## S &lt;b&gt;
<BLANKLINE>
a|b
<BLANKLINE>
| x |
| --- |
| &lt;script&gt; |
<BLANKLINE>
"""

from __future__ import annotations

import html

from lrscope.outputs.report.document import Block, Code, Document, FigureRef, Paragraph, Table


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def render(document: Document) -> str:
    parts = [f"# {escape(document.title)}"]
    parts += [escape(p.text) for p in document.intro]
    for section in document.sections:
        parts.append(f"{'#' * section.level} {escape(section.title)}")
        parts += [_block(block) for block in section.blocks]
    return "\n\n".join(parts) + "\n"


def _block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return escape(block.text)
    if isinstance(block, Table):
        def row(cells: list[str]) -> str:
            return "| " + " | ".join(escape(c).replace("|", "\\|") for c in cells) + " |"
        lines = [row(block.header), "| " + " | ".join("---" for _ in block.header) + " |"]
        return "\n".join(lines + [row(r) for r in block.rows])
    if isinstance(block, FigureRef):
        alt = escape(block.alt_text).replace("[", "(").replace("]", ")")
        caption = escape(block.caption).replace("*", "\\*")
        return f"![{alt}]({block.path.as_posix()})\n\n*{caption}*"
    if isinstance(block, Code):
        fence = "````" if "```" in block.text else "```"
        return f"{fence}\n{block.text}\n{fence}"
    raise TypeError(f"unknown block {block!r}")
