"""The built-in dashboard: its page and the files it loads, shipped inside the package.

The page lives in ``lamina_service/web/`` (``index.html``, ``app.js``, ``app.css``)
with the charting library vendored under ``web/vendor/`` (uPlot, MIT, pinned; see
its ``VERSION.md``). Nothing is fetched from a CDN and nothing is built at install
time. Only files present in ``web/`` when the process starts are served, by exact
relative path, so a request can never name a file outside it.
"""

from __future__ import annotations

from pathlib import Path

from lamina_service.errors import NotFound

WEB_DIR = Path(__file__).resolve().parent / "web"
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".md": "text/plain; charset=utf-8",
               ".svg": "image/svg+xml",
               "": "text/plain; charset=utf-8"}


def _files() -> dict[str, Path]:
    return {path.relative_to(WEB_DIR).as_posix(): path for path in sorted(WEB_DIR.rglob("*"))
            if path.is_file() and path.suffix in MEDIA_TYPES}


FILES = _files()
PAGE = (WEB_DIR / "index.html").read_text(encoding="utf-8")


def asset(path: str) -> tuple[bytes, str]:
    """The bytes and media type of the page's file at ``path`` (relative to ``web/``).

    Raises:
        NotFound: ``path`` is not one of the shipped files.
    """
    found = FILES.get(path)
    if found is None:
        raise NotFound(f"no such file of the web page: {path[:200]!r}", field="path")
    return found.read_bytes(), MEDIA_TYPES[found.suffix]
