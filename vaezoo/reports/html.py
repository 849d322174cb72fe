"""One self-contained HTML report of a sweep or runs folder: leaderboard, trade-off plots, job sections.

Everything is inlined (plotly.js from the plotly package's offline bundle, styles, the PNGs as base64),
and a Content-Security-Policy forbids every network request, so the file works offline and can be
mailed. Past ``inline_pictures_max_jobs`` jobs (``report.inline_pictures_max_jobs``, default
:data:`INLINE_PICTURES_MAX_JOBS`) the jobs' pictures are linked instead, by relative paths into the job
folders, and loaded lazily as they scroll into view: a 1,800-job study would otherwise be gigabytes.
A sweep of a study (``experiment=disentanglement_study``) gets a study section
(:mod:`vaezoo.reports.study`). It reads job folders only through :mod:`vaezoo.jobs.folder`
(via :func:`vaezoo.reports.leaderboard.leaderboard`).

A job folder may come from someone else, so nothing read from it may run in the browser: the CSP
admits only the page's own inline scripts, by their SHA-256 (no ``'unsafe-inline'``, so no
``javascript:`` link or injected handler runs), every text and attribute is escaped, and the only
links are anchors in the page and percent-encoded relative paths to the job folders.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from omegaconf import OmegaConf

from vaezoo.jobs.folder import Job
from vaezoo.reports.leaderboard import Board, Column, leaderboard
from vaezoo.reports.samples import samples_section_html
from vaezoo.reports.study import correlation_table_html, figures, study_of, summary_table_html
from vaezoo.visualize import described

REPORT = "report.html"
#: Up to this many jobs the pictures are inlined (one self-contained file, ~0.3 MB a job); beyond, linked.
INLINE_PICTURES_MAX_JOBS = 20
#: Pictures shown per job, in this order (others the job drew follow); per-epoch copies are left out.
IMAGE_ORDER = (
    "curves",
    "samples",
    "reconstructions",
    "traversals",
    "interpolations",
    "manifold",
    "tsne",
    "anomaly_histograms",
    "class_rows",
    "layers",
    "code_usage",
    "factor_traversals",
)
#: No request may leave the file: scripts, styles and images are inline or data: URLs. Scripts run only
#: when their text hashes to one listed in script-src (:func:`content_security_policy`).
CSP_REST = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "base-uri 'none'; form-action 'none'"
)
#: The image sources of a report that links its pictures: files beside it (file: pages, where Chromium
#: treats every file as its own origin) or on the server it is served from ('self'); still no network.
LINKED_IMG_SRC = "img-src data: 'self' file:"
#: Characters left as they are in a job folder link, besides letters, digits and ``_.-~``
#: (sweep job folders are named like ``0_beta=1,model.latent_dim=5``); ``:`` is always encoded, so
#: a folder name never becomes a URL scheme.
PATH_SAFE = "=,+@"

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;color:#222}
h1{font-size:1.5em} h2{margin-top:2em;border-bottom:1px solid #ccc} h3{margin:1.2em 0 .3em}
table.board{border-collapse:collapse;font-size:13px}
.board th,.board td{padding:3px 8px;border-bottom:1px solid #ddd}
.board th{cursor:pointer;background:#f4f4f4;position:sticky;top:0;white-space:nowrap}
.board th.asc::after{content:" \\25B2"} .board th.desc::after{content:" \\25BC"}
.board td.num{text-align:right;font-variant-numeric:tabular-nums}
.board td.best,table.samples td.best{font-weight:bold;color:#0a7d32}
.board tr.failed td{color:#b00020} #filter{margin:.5em 0;padding:4px;width:24em}
.pictures img{max-width:100%;border:1px solid #eee;margin:4px 0;display:block}
pre{background:#f7f7f7;padding:.6em;overflow:auto;max-height:30em;font-size:12px}
.muted{color:#777} .plots{display:flex;flex-wrap:wrap;gap:1em} table.study td{white-space:nowrap}
"""

SCRIPT = """
(function(){
  const table=document.getElementById('board'); if(!table) return;
  const body=table.tBodies[0];
  table.querySelectorAll('th').forEach(function(th,i){
    th.addEventListener('click',function(){
      const asc=!th.classList.contains('asc');
      table.querySelectorAll('th').forEach(function(h){h.classList.remove('asc','desc');});
      th.classList.add(asc?'asc':'desc');
      const rows=Array.from(body.rows);
      rows.sort(function(a,b){
        const x=a.cells[i].dataset.value, y=b.cells[i].dataset.value;
        const nx=parseFloat(x), ny=parseFloat(y);
        let c;
        if(x===''&&y!=='') c=1; else if(y===''&&x!=='') c=-1;
        else if(!isNaN(nx)&&!isNaN(ny)) c=nx-ny; else c=String(x).localeCompare(String(y));
        return asc?c:-c;
      });
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
  const filter=document.getElementById('filter');
  filter.addEventListener('input',function(){
    const q=filter.value.toLowerCase();
    Array.from(body.rows).forEach(function(r){r.style.display=r.textContent.toLowerCase().includes(q)?'':'none';});
  });
})();
"""


def write_report(
    folder: str | Path,
    out: str | Path | None = None,
    inline_pictures_max_jobs: int = INLINE_PICTURES_MAX_JOBS,
) -> Path:
    """Write the report of every job under ``folder`` to ``out`` (default ``<folder>/report.html``);
    the pictures are inlined up to ``inline_pictures_max_jobs`` jobs, linked beyond."""
    folder = Path(folder).expanduser().resolve()
    board = leaderboard(folder)
    out = Path(out) if out is not None else folder / REPORT
    out.parent.mkdir(parents=True, exist_ok=True)
    inline = len(board.rows) <= inline_pictures_max_jobs
    page = render(board, folder, out.parent, inline_pictures=inline)
    partial = out.with_name(f".{out.name}.tmp")  # renamed into place: never a half-written page
    try:
        partial.write_text(page, encoding="utf-8")
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return out


class Scripts:
    """The page's own inline scripts: each is written through :meth:`tag`, which records its hash."""

    def __init__(self) -> None:
        self.hashes: list[str] = []

    def tag(self, code: str) -> str:
        if "</script" in code.lower():
            raise ValueError("an inline script must not contain '</script'")
        digest = base64.b64encode(hashlib.sha256(code.encode("utf-8")).digest()).decode("ascii")
        self.hashes.append(f"'sha256-{digest}'")
        return f"<script>{code}</script>"


def content_security_policy(script_hashes: list[str], linked_pictures: bool = False) -> str:
    """Only the listed scripts may run: no 'unsafe-inline', so no javascript: URL or event handler.
    ``linked_pictures``: images may also come from files beside the report (never from the network)."""
    rest = CSP_REST.replace("img-src data:", LINKED_IMG_SRC) if linked_pictures else CSP_REST
    return f"script-src {' '.join(dict.fromkeys(script_hashes))}; {rest}"


SCRIPT_ELEMENT = re.compile(r"<script\b[^>]*>(.*?)</script>", re.S | re.I)


def render(board: Board, folder: Path, report_dir: Path, inline_pictures: bool = True) -> str:
    import plotly.offline

    scripts = Scripts()
    finished = sum(r["status"] == "finished" for r in board.rows)
    head_script = scripts.tag(plotly.offline.get_plotlyjs())
    plots = [plot_html(fragment, scripts) for fragment in trade_off_plots(board)]
    study = study_section(board, scripts)
    sections = [
        job_section(job, row, report_dir, inline_pictures)
        for job, row in zip(board.jobs, board.rows, strict=True)
    ]
    pictures_note = (
        ""
        if inline_pictures
        else f" {len(board.rows)} jobs: each job's pictures are linked from its folder (kept beside this "
        "file) and load as they scroll into view; raise report.inline_pictures_max_jobs to inline them."
    )
    table = board_table(board, report_dir)
    tail_script = scripts.tag(SCRIPT)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' "
        f'content="{content_security_policy(scripts.hashes, linked_pictures=not inline_pictures)}">',
        f"<title>vaezoo report: {html.escape(folder.name)}</title><style>{STYLE}</style>",
        f"{head_script}</head><body>",
        f"<h1>vaezoo report: {html.escape(str(folder))}</h1>",
        f"<p class='muted'>{len(board.rows)} jobs, {finished} finished. Click a column header to sort; type "
        "to filter. ↑: higher is better, ↓: lower is better (point at a column's name for its unit); "
        f"best values in green, only in columns with a direction.{html.escape(pictures_note)}</p>",
        "<h2 id='leaderboard'>Leaderboard</h2>",
        "<input id='filter' type='search' placeholder='filter rows, e.g. beta=4 or failed'>",
        table,
        "<h2 id='trade-offs'>Trade-offs across the sweep</h2><div class='plots'>",
        *plots,
        "</div>",
        study,
        samples_section_html(board),
        *sections,
        f"{tail_script}</body></html>",
    ]
    page = "\n".join(parts)
    # Every script element in the page is one of ours: text from a job folder is escaped, so it
    # cannot open one; if it ever did, its hash is not in the CSP and the browser would not run it.
    if len(SCRIPT_ELEMENT.findall(page)) != len(scripts.hashes):
        raise RuntimeError("the report holds a script element it did not write; report this as a bug")
    return page


def study_section(board: Board, scripts: Scripts) -> str:
    """Locatello et al.'s figures when the sweep is a study (jobs with ``study.method``), else nothing."""
    study = study_of(board)
    if study is None:
        return ""
    cells = len({(j.method, j.value) for j in study.jobs})
    seeds = len({j.seed for j in study.jobs})
    plots = [
        plot_html(
            fig.update_layout(margin=dict(l=60, r=20, t=100, b=50)).to_html(
                full_html=False, include_plotlyjs=False, config={"displaylogo": False}
            ),
            scripts,
        )
        for fig in figures(study)
    ]
    return "\n".join(
        [
            "<h2 id='study'>Disentanglement study</h2>",
            f"<p class='muted'>{len(study.jobs)} finished jobs: {len(study.methods)} methods, {cells} "
            f"method × value cells, {seeds} seeds. Per metric, the distribution over seeds of each method "
            "at each value of its hyperparameter (Locatello et al. 2019, Figure 7); then Spearman's rank "
            "correlation between the metrics over all jobs (their Figure 2). Box: quartiles; "
            "points: seeds.</p>",
            "<div class='plots'>",
            *plots,
            "</div>",
            "<h3>Median [first quartile, third quartile] over seeds</h3>",
            summary_table_html(study),
            "<h3>Spearman rank correlation between metrics</h3>",
            correlation_table_html(study),
        ]
    )


def plot_html(fragment: str, scripts: Scripts) -> str:
    """A plotly ``to_html`` fragment (a div and the script that draws it), its script hashed for the CSP.

    Plotly writes ``<`` inside the figure's JSON as ``\\u003c``, so labels cannot close the script.
    """
    matches = list(SCRIPT_ELEMENT.finditer(fragment))
    if not matches:  # a note such as "No finished job yet."
        return fragment
    if len(matches) > 1:
        raise RuntimeError("a plotly figure came with more than one script; report this as a bug")
    (match,) = matches
    return fragment[: match.start()] + scripts.tag(match.group(1)) + fragment[match.end() :]


def anchor(job: Job) -> str:
    return "job-" + re.sub(r"[^A-Za-z0-9_-]", "-", job.name)


def relative_link(path: Path, report_dir: Path) -> str | None:
    """The percent-encoded relative path from the report to ``path``, or None where there is none.

    It works from the file system wherever the report and the job folders sit together. Each name is
    percent-encoded (``:`` included), so a folder named ``javascript:alert(1)`` is the relative link
    ``javascript%3Aalert%281%29``, never a URL with a scheme.
    """
    try:
        relative = os.path.relpath(path, report_dir)
    except ValueError:  # another drive (Windows): no relative path exists
        return None
    parts = Path(relative).parts
    if not parts or Path(relative).is_absolute():
        return None
    link = "/".join(quote(part, safe=PATH_SAFE) for part in parts)
    split = urlsplit(link)
    if split.scheme or split.netloc or link.startswith(("/", "\\")) or "\\" in link:
        return None
    return link


def header_cell(column: Column) -> str:
    """The column's name with its ↑ / ↓, and what it is, its unit and direction as a tooltip."""
    title = (
        "" if column.reported is None else f" title='{html.escape(column.reported.description, quote=True)}'"
    )
    return f"<th{title}>{html.escape(column.heading)}</th>"


def board_table(board: Board, report_dir: Path) -> str:
    best = {c.name: board.best(c) for c in board.columns}
    head = "".join(header_cell(c) for c in board.columns)
    rows = []
    for job, row in zip(board.jobs, board.rows, strict=True):
        cells = []
        for column in board.columns:
            value = row.get(column.name)
            text = html.escape(board.text(row, column))
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            classes = ["num"] if number else []
            if best[column.name] is not None and value == best[column.name]:
                classes.append("best")
            if column.name == "job":
                text = f"<a href='#{anchor(job)}'>{text}</a>"
            elif column.name == "status" and row["status"] == "failed":
                text = f"failed: {html.escape(str(row.get('error', ''))[:120])}"
            data = "" if value is None else html.escape(str(value), quote=True)
            cells.append(f"<td class='{' '.join(classes)}' data-value=\"{data}\">{text}</td>")
        rows.append(f"<tr class='{html.escape(str(row['status']), quote=True)}'>{''.join(cells)}</tr>")
    body = "".join(rows)
    return f"<table id='board' class='board'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def swept_values(board: Board) -> dict[str, list[float | None]]:
    """Keys set to numbers by the jobs' overrides, with two or more distinct values: {key: value per row}."""
    found: dict[str, list[float | None]] = {}
    for i, job in enumerate(board.jobs):
        for override in job.overrides:
            key, _, value = override.lstrip("+").partition("=")
            try:
                number = float(value)
            except ValueError:
                continue
            found.setdefault(key, [None] * len(board.jobs))[i] = number
    return {k: v for k, v in found.items() if len({x for x in v if x is not None}) > 1}


def trade_off_plots(board: Board) -> list[str]:
    """Reconstruction against KL over the jobs, and every ranked metric against each swept number."""
    import plotly.graph_objects as go

    done = [
        i for i, r in enumerate(board.rows) if r.get("KL") is not None and r.get("log p(x|z)") is not None
    ]
    if not done:
        return ["<p class='muted'>No finished job yet.</p>"]
    # Plotly reads a subset of HTML in text (<a href>, <b>): labels from job folders are escaped for it.
    labels = [html.escape(str(board.rows[i]["overrides"])) for i in done]
    figures = []
    rate = go.Figure(
        go.Scatter(
            x=[board.rows[i]["KL"] for i in done],
            y=[board.rows[i]["log p(x|z)"] for i in done],
            mode="markers+text",
            text=labels,
            textposition="top center",
            hovertemplate="%{text}<br>KL %{x:.2f}<br>log p(x|z) %{y:.2f}<extra></extra>",
        )
    )
    rate.update_layout(
        width=620,
        height=420,
        title="Reconstruction against KL (rate-distortion)",
        xaxis_title="KL (nats, rate)",
        yaxis_title="log p(x|z) (nats, reconstruction)",
    )
    figures.append(rate)
    ranked = [c.name for c in board.columns if c.better and c.name not in ("train s",)]
    for key, values in swept_values(board).items():
        figures.append(against_key(board, html.escape(key), values, [*ranked, "KL"]))
    return [
        f.update_layout(margin=dict(l=60, r=20, t=60, b=50)).to_html(
            full_html=False, include_plotlyjs=False, config={"displaylogo": False}
        )
        for f in figures
    ]


def against_key(board: Board, key: str, values: list[float | None], names: list[str]) -> Any:
    """One small panel per metric against a swept number (log axis for positive values over a wide range)."""
    from plotly.subplots import make_subplots

    panels = []
    for name in names:
        points = [(x, r.get(name)) for x, r in zip(values, board.rows, strict=True)]
        points = sorted((x, y) for x, y in points if x is not None and isinstance(y, (int, float)))
        if points:
            panels.append((name, points))
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[n for n, _ in panels], horizontal_spacing=0.08)
    positive = [x for x in values if x is not None]
    log_axis = min(positive) > 0 and max(positive) / min(positive) >= 10
    for i, (name, points) in enumerate(panels):
        fig.add_scatter(
            x=[p[0] for p in points],
            y=[p[1] for p in points],
            name=name,
            showlegend=False,
            row=i // cols + 1,
            col=i % cols + 1,
        )
        fig.update_xaxes(
            title_text=key, type="log" if log_axis else "linear", row=i // cols + 1, col=i % cols + 1
        )
    fig.update_layout(title=f"Metrics against {key}", width=300 * cols, height=260 * rows + 60)
    return fig


def inline_png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def picture_source(path: Path, report_dir: Path, inline: bool) -> str | None:
    """The ``src`` of a picture: its PNG inlined, or its relative link (None where there is none)."""
    return inline_png(path) if inline else relative_link(path, report_dir)


def job_section(job: Job, row: dict[str, Any], report_dir: Path, inline_pictures: bool = True) -> str:
    title = html.escape(f"{job.name}: {row['overrides']}")
    parts = [f"<h2 id='{anchor(job)}'>{title}</h2>"]
    link = relative_link(job.path, report_dir)
    folder = (
        f"<a href='{html.escape(link, quote=True)}/'>job folder</a>"
        if link is not None
        else "job folder (not linked: no relative path from the report)"
    )
    parts.append(
        f"<p>{folder} · <a href='#leaderboard'>back to the leaderboard</a> · "
        f"status: {html.escape(str(row['status']))}</p>"
    )
    if row["status"] == "failed":
        parts.append(f"<pre>{html.escape(json.dumps(job.failure, indent=2))}</pre>")
    results = job.results
    if results is not None:
        test = {k: v for k, v in results.test.items() if isinstance(v, (int, float, str))}
        parts.append(
            "<details><summary>test results</summary>"
            f"<pre>{html.escape(json.dumps(test, indent=2))}</pre></details>"
        )
    images = job.images()
    ordered = [n for n in IMAGE_ORDER if n in images] + [n for n in images if n not in IMAGE_ORDER]
    parts.append("<div class='pictures'>")
    for name in ordered:
        declaration = described(name)
        title, uses = declaration if declaration is not None else (f"{name}.png", "")
        caption = f"<p class='muted'>From {html.escape(uses)}.</p>" if uses else ""
        source = picture_source(images[name], report_dir, inline_pictures)
        lazy = "" if inline_pictures else " loading='lazy'"
        picture = (
            f"<img alt='{html.escape(title, quote=True)}'{lazy} src='{html.escape(source, quote=True)}'>"
            if source is not None
            else "<p class='muted'>(not linked: no relative path from the report)</p>"
        )
        parts.append(f"<h3>{html.escape(title)}</h3>{caption}{picture}")
    parts.append("</div>")
    if job.config is not None:
        config = OmegaConf.to_yaml(job.config)
        parts.append(f"<details><summary>config</summary><pre>{html.escape(config)}</pre></details>")
    return "\n".join(parts)
