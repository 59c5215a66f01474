"""Render a report :class:`~lrscope.outputs.report.document.Document` as Markdown (``report.md``).

Figures are linked as files under ``figures/``. Every text of the document is plain text (study,
run and schedule names come from the user), so it is escaped for Markdown as well as for HTML:
``<``, ``>`` and ``&`` as HTML entities (renderers pass raw HTML through, and ``<http://...>`` is
an autolink), and a backslash before each character that can open inline markup -- ``[`` and
``]`` (so no name can become a link or a remote image), ``*``, ``_`` (but inside a word), the
backtick, ``|`` and ``\\`` -- and before ``#``, ``+``, ``-`` or ``1.`` at the start of a line
(a heading, a list). Only characters that CommonMark, GitHub and Python-Markdown all unescape
are escaped, so the rendered text reads as written. A bare address (``http://...``) stays
text; some viewers (GitHub) show it as a link to itself, never under other words.

>>> from lrscope.outputs.report.document import Document, Paragraph, Section, Table
>>> doc = Document("T", sections=[Section("S <b>", 2).add(Paragraph("a|b ![x](http://e/x.png)"),
...                                Table(["x"], [["<script>"], ["[a](http://e)"]]))])
>>> print(render(doc))
# T
<BLANKLINE>
## S &lt;b&gt;
<BLANKLINE>
a\\|b !\\[x\\](http://e/x.png)
<BLANKLINE>
| x |
| --- |
| &lt;script&gt; |
| \\[a\\](http://e) |
<BLANKLINE>
"""

from __future__ import annotations

import html
import re

from lrscope.outputs.report.document import Block, Code, Document, FigureRef, Paragraph, Table

# Inline markup anywhere; block markup (a heading, a list item) only where a line starts.
# An underscore between two letters or digits opens nothing (CommonMark, Python-Markdown), so
# names like val_loss stay as written.
_INLINE = re.compile(r"([\\`*\[\]|]|(?<![^\W_])_|_(?![^\W_]))")
_BLOCK_START = re.compile(r"^(\s*)([#+-])", re.MULTILINE)
_ORDERED_ITEM = re.compile(r"^(\s*\d+)([.)])", re.MULTILINE)


def escape(text: str) -> str:
    """``text`` as Markdown that renders to exactly ``text``, with no markup of its own.

    >>> print(escape("# *a_b* _c_ <i>"), escape("1. first"), escape("- [a](http://e)"), sep="\\n")
    \\# \\*a_b\\* \\_c\\_ &lt;i&gt;
    1\\. first
    \\- \\[a\\](http://e)
    """
    escaped = _INLINE.sub(r"\\\1", html.escape(text, quote=False))
    escaped = _BLOCK_START.sub(r"\1\\\2", escaped)
    return _ORDERED_ITEM.sub(r"\1\\\2", escaped)


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
            return "| " + " | ".join(escape(c) for c in cells) + " |"
        def predicted(cells: list[str]) -> str:  # in italics: never read as a measurement
            return "| " + " | ".join(f"*{escape(c)}*" for c in cells) + " |"
        lines = [row(block.header), "| " + " | ".join("---" for _ in block.header) + " |"]
        return "\n".join(lines + [predicted(r) if i in block.predicted else row(r)
                                  for i, r in enumerate(block.rows)])
    if isinstance(block, FigureRef):
        return f"![{escape(block.alt_text)}]({block.path.as_posix()})\n\n*{escape(block.caption)}*"
    if isinstance(block, Code):
        # longer than any run of backticks in the text (a name may hold some)
        longest = max((len(run) for run in re.findall("`+", block.text)), default=0)
        fence = "`" * max(3, longest + 1)
        return f"{fence}\n{block.text}\n{fence}"
    raise TypeError(f"unknown block {block!r}")
