"""The HTML report runs no script but its own: a CSP of script hashes, relative links, escaped attributes.

Job folders may come from someone else; their names, overrides and failures end up in the page.
The browser half of this (Chromium clicking a ``javascript:`` folder link) is in
tests/test_report_browser.py.
"""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.test_leaderboard import fake_job
from vaezoo.reports.html import relative_link, write_report

BASE = {"log_px_z_nats": -20.0, "kl_nats": 5.0, "active_units": 8, "latent_units": 10, "elbo_nats": -25.0}
HOSTILE_NAMES = [
    "javascript:alert(1)",
    "javascript:document.title='pwned'",
    "x' onmouseover='alert(1)",
    'x" onclick="alert(1)',
    "<script>alert(1)</script>",
    "data:text;html,<b>",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "a&b;c#d?e%41",
]


class Page(HTMLParser):
    """Every start tag with its attributes, and the text of each script element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def parsed(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    return parser


def policy(page: Page) -> dict[str, list[str]]:
    (content,) = [
        a["content"]
        for tag, a in page.tags
        if tag == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy"
    ]
    assert content is not None
    directives = [d.split() for d in content.split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


def sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


@pytest.fixture
def hostile_runs(tmp_path: Path) -> Path:
    """Finished jobs named like attacks (two, so the trade-off plots are drawn), and a failed one."""
    runs = tmp_path / "runs"
    for i, name in enumerate(HOSTILE_NAMES):
        fake_job(runs / name, [f"beta={i + 1}", f"+note={name}"], {**BASE, "kl_nats": float(i)})
    fake_job(runs / "failed'<job>", ["beta=99"])  # failed.json
    return runs


def test_the_csp_lists_the_hash_of_every_inline_script_and_nothing_unsafe(hostile_runs: Path):
    page = parsed(write_report(hostile_runs).read_text())
    csp = policy(page)
    assert csp["default-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    sources = csp["script-src"]
    assert all(s.startswith("'sha256-") for s in sources), sources
    assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources
    # One hash per inline script (plotly.js, each plot, the table's sorting and filtering), all matching.
    assert len(page.scripts) >= 4
    assert sorted(set(sources)) == sorted({sha256(code) for code in page.scripts})
    assert all(not a.get("src") for tag, a in page.tags if tag == "script")


def test_no_link_leaves_the_page_or_the_runs_folder(hostile_runs: Path):
    report = write_report(hostile_runs)
    page = parsed(report.read_text())
    links = [a["href"] for tag, a in page.tags if tag == "a" and a.get("href") is not None]
    folder_links = [link for link in links if not link.startswith("#")]
    assert len(folder_links) == len(HOSTILE_NAMES) + 1
    for link in folder_links:
        assert not re.match(r"\s*[A-Za-z][A-Za-z0-9+.-]*:", link), link  # no scheme at all
        assert not link.startswith(("/", "\\")) and "'" not in link and '"' not in link, link
    assert "javascript%3Aalert%281%29/" in folder_links
    assert "javascript%3Adocument.title=%27pwned%27/" in folder_links
    # Each link, decoded, leads from the report to its job folder.
    from urllib.parse import unquote

    for link in folder_links:
        assert (report.parent / unquote(link)).resolve().is_dir(), link
    assert {unquote(link).rstrip("/") for link in folder_links} == {
        *HOSTILE_NAMES,
        "failed'<job>",
    }


def test_no_event_handler_or_markup_from_a_folder_name(hostile_runs: Path):
    text = write_report(hostile_runs).read_text()
    page = parsed(text)
    for tag, attributes in page.tags:
        assert not [a for a in attributes if a.startswith("on")], (tag, attributes)
    assert [tag for tag, _ in page.tags].count("script") == len(page.scripts)
    assert "<script>alert(1)" not in text and "<b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # shown as text, in the headings


def test_plot_labels_are_escaped_for_plotly_html(hostile_runs: Path):
    text = write_report(hostile_runs).read_text()
    # Plotly turns <a href=...> in a label into a link: the overrides reach it as &lt;...
    assert "+note=\\u003cscript\\u003e" not in text
    assert "+note=&lt;script&gt;" in text


@pytest.mark.parametrize(
    ("target", "link"),
    [
        ("runs/0_beta=1,model.latent_dim=5", "0_beta=1,model.latent_dim=5"),
        ("runs/sub/javascript:x", "sub/javascript%3Ax"),
        ("elsewhere/job one", "../elsewhere/job%20one"),
        ("runs/a?b#c", "a%3Fb%23c"),
    ],
)
def test_relative_links_are_percent_encoded_paths(tmp_path: Path, target: str, link: str):
    assert relative_link(tmp_path / target, tmp_path / "runs") == link


def test_the_report_folder_itself_has_no_link(tmp_path: Path):
    assert relative_link(tmp_path, tmp_path) is None
