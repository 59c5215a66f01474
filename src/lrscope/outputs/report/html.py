"""Render a report :class:`~lrscope.outputs.report.document.Document` as one self-contained
HTML file.

Every figure is embedded as a base64 PNG ``data:`` URI and the style sheet is inline, so the
file can be mailed or archived alone. All text goes through :func:`html.escape`, and a
Content-Security-Policy allowing no scripts at all backs that up: a schedule label such as
``<script>`` is shown as text and can never run.

>>> from lrscope.outputs.report.document import Document, Paragraph, Section
>>> page = render(Document("T", sections=[Section("<script>x()</script>", 2)]), Path("."))
>>> "<script>" in page, "&lt;script&gt;x()&lt;/script&gt;" in page
(False, True)
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from lrscope.outputs.report.document import Block, Code, Document, FigureRef, Paragraph, Table

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f2f2f2; } td:nth-child(2) { text-align: left; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #555; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
tr.predicted td { font-style: italic; color: #666; background: #f7f7fb; border-style: dashed; }
"""
# a row of a predict study's untrained candidate: its own look, never a measurement's
PREDICTED_ROW = '<tr class="predicted" title="predicted, not trained">'


def escape(text: str) -> str:
    return html.escape(text, quote=True)


def render(document: Document, directory: Path) -> str:
    """The page; figure paths are read relative to ``directory`` and embedded."""
    body = [f"<h1>{escape(document.title)}</h1>"]
    body += [f"<p>{escape(p.text)}</p>" for p in document.intro]
    for section in document.sections:
        level = min(max(section.level, 2), 6)
        body.append(f"<section><h{level}>{escape(section.title)}</h{level}>")
        body += [_block(block, directory) for block in section.blocks]
        body.append("</section>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{escape(document.title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body) + "\n</body></html>\n"
    )


def _block(block: Block, directory: Path) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{escape(block.text)}</p>"
    if isinstance(block, Table):
        head = "".join(f"<th>{escape(c)}</th>" for c in block.header)
        rows = "".join((PREDICTED_ROW if i in block.predicted else "<tr>")
                       + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>"
                       for i, r in enumerate(block.rows))
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    if isinstance(block, FigureRef):
        data = base64.b64encode((directory / block.path).read_bytes()).decode("ascii")
        caption = escape(block.caption)
        return (f"<figure><img src=\"data:image/png;base64,{data}\" "
                f"alt=\"{escape(block.alt_text)}\">"
                f"<figcaption>{caption}</figcaption></figure>")
    if isinstance(block, Code):
        return f"<pre><code>{escape(block.text)}</code></pre>"
    raise TypeError(f"unknown block {block!r}")
