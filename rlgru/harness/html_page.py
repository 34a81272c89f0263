"""The report as one self-contained HTML page: the README's tables and verdicts, with every plot inlined.

Readers open ``report.html`` from disk, a mail attachment or a CI artefact: no server, no neighbouring files, so
images are embedded as data URIs. The markdown is rendered by Python-Markdown (tables extension), the same text
as ``README.md``, so the two never disagree.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import markdown

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1180px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #eee; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.86em; display: block; overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 3px 7px; white-space: nowrap; }
th { background: #f4f4f4; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; border: 1px solid #eee; margin: .5em 0; }
code { background: #f4f4f4; padding: 0 3px; }
li { margin: .3em 0; }
"""


def render_page(markdown_text: str, image_dir: Path, title: str) -> str:
    """HTML for ``markdown_text`` whose relative ``.png`` images (looked up in ``image_dir``) are inlined."""
    body = markdown.markdown(markdown_text, extensions=["tables"], output_format="html")
    body = re.sub(r'src="([^"/:]+\.png)"', lambda match: f'src="{_data_uri(image_dir / match.group(1))}"', body)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _data_uri(path: Path) -> str:
    if not path.is_file():
        return path.name  # left as a link: a plot the report names but never wrote shows as missing, not as an error
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


__all__ = ["render_page"]
