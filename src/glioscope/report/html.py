"""Self-contained HTML: inline CSS, PNGs as data URIs, no scripts and no external links."""

from __future__ import annotations

import base64
import html
import math
from typing import Iterable, Sequence

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1.5em; color: #1d2330; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #d8dde6; padding-bottom: 0.2em; margin-top: 2em; }
h3 { margin-top: 1.4em; }
.meta { color: #4a5568; margin: 0.2em 0 1em; } .meta b { color: #1d2330; }
.statement { border-left: 6px solid #2b6cb0; background: #ebf4ff; padding: 0.8em 1em; font-size: 1.15em;
             font-weight: 600; margin: 1em 0; }
.banner { padding: 0.9em 1em; margin: 1em 0; border-radius: 4px; font-weight: 600; }
.banner.leaky { background: #c53030; color: #fff; font-size: 1.2em; }
.banner.warning { background: #fffbea; border: 2px solid #d69e2e; color: #744210; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.92em; }
th, td { border: 1px solid #cbd2dc; padding: 0.35em 0.6em; text-align: right; vertical-align: top; }
th { background: #edf0f5; text-align: center; } td.label { text-align: left; font-weight: 600; }
caption { caption-side: top; text-align: left; color: #4a5568; padding-bottom: 0.3em; font-size: 0.95em; }
.ci { color: #5a6475; font-size: 0.85em; white-space: nowrap; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #e2e8f0; }
figcaption { color: #4a5568; font-size: 0.9em; }
details { margin: 0.6em 0; } summary { cursor: pointer; color: #2b6cb0; }
pre { background: #f7f8fa; border: 1px solid #e2e8f0; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
footer { margin-top: 3em; border-top: 1px solid #d8dde6; padding-top: 0.6em; color: #718096; font-size: 0.85em; }
"""


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def is_missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def number(x, digits: int = 3, scale: float = 1.0) -> str:
    """A metric as text; missing values (e.g. an AUC where a class is absent) as an en dash."""
    return "–" if is_missing(x) else f"{float(x) * scale:.{digits}f}"


def interval(pair, digits: int = 3, scale: float = 1.0) -> str:
    if pair is None or any(is_missing(v) for v in pair):
        return "[–]"
    return f"[{number(pair[0], digits, scale)}, {number(pair[1], digits, scale)}]"


def mean_sd(pair, digits: int = 3, scale: float = 1.0) -> str:
    if pair is None or is_missing(pair[0]):
        return "–"
    return f"{number(pair[0], digits, scale)} ± {number(pair[1], digits, scale)}"


def table(
    header: Sequence[str], rows: Iterable[Sequence[str]], caption: str | None = None, label_columns: int = 1
) -> str:
    """An HTML table; cells are HTML already (escape text with esc), the first `label_columns` left-aligned."""
    parts = ["<table>"]
    if caption:
        parts.append(f"<caption>{caption}</caption>")
    parts.append("<thead><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr></thead><tbody>")
    for row in rows:
        cells = [f'<td class="label">{c}</td>' if i < label_columns else f"<td>{c}</td>" for i, c in enumerate(row)]
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    return "\n".join(parts)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image(png: bytes, alt: str, caption: str | None = None, width: int | None = None, css: str = "") -> str:
    """A PNG embedded as a data URI, so that the page opens offline and stands alone (`width`: in CSS pixels)."""
    text = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    size = f' width="{int(width)}"' if width else ""
    kind = f' class="{esc(css)}"' if css else ""
    return f'<figure{kind}><img src="{data_uri(png)}" alt="{esc(alt)}"{size}>{text}</figure>'


def page(title: str, body: Sequence[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
