"""A finished 2-job digits sweep: its leaderboard, its HTML report opened in headless Chromium, and
what it logged to W&B (read from the offline run files)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import TINY, run_cli
from tests.wandb_records import offline_run
from vaezoo.jobs.folder import find_jobs

SWEEP = [
    "-m",
    *TINY,
    "beta=1,4",
    "pictures.enabled=true",
    "pictures.n_examples=200",
    "pictures.tsne_points=100",
    "logger=wandb",
]


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    runs = tmp_path_factory.mktemp("runs")
    done = run_cli([*SWEEP, f"paths.runs={runs}", "logger.mode=offline"], cwd=runs, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    (sweep,) = (runs / "multirun").iterdir()
    return sweep, done.stdout


def test_a_multirun_ends_with_its_leaderboard_and_report(finished_sweep):
    sweep, stdout = finished_sweep
    assert "Leaderboard (2 jobs" in stdout and "beta=1" in stdout and "beta=4" in stdout
    assert f"report: {sweep / 'report.html'}" in stdout.replace("\n", "")
    jobs = find_jobs(sweep)
    assert len(jobs) == 2
    for job in jobs:
        images = set(job.images())
        assert {"traversals", "interpolations", "tsne", "anomaly_histograms", "curves"} <= images


def test_wandb_runs_say_what_the_sweep_is_and_keep_the_best_values(finished_sweep):
    sweep, _ = finished_sweep
    runs = [offline_run(p) for job in find_jobs(sweep) for p in job.path.glob("wandb/offline-run-*")]
    assert len(runs) == 2
    for run in runs:
        assert run["job_type"] == "train" and run["group"] == f"beta-{sweep.name}"
        logged = {key.split("/")[1] for key in run["history_keys"] if key.startswith("pictures/")}
        assert {"traversals", "interpolations", "tsne", "anomaly_histograms", "curves"} <= logged
        # The summary holds the best validation ELBO (the best checkpoint's), not the last epoch's.
        assert run["summary"]["val/elbo"] == {"max": pytest.approx(run["summary"]["best/val/elbo"])}
    (board,) = [offline_run(p) for p in sweep.glob(".leaderboard/wandb/offline-run-*")]
    assert board["job_type"] == "leaderboard" and board["group"] == f"beta-{sweep.name}"
    assert {"leaderboard/nrows", "leaderboard/ncols"} <= board["history_keys"]


def browser() -> tuple[str, str]:
    """Debian's chromium and chromedriver; skipped where absent, except in CI (which installs them)."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    if os.environ.get("CI") == "true":
        pytest.fail(
            "chromium or chromedriver is missing in CI; .ci/run installs chromium and chromium-driver"
        )
    pytest.skip("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")


CATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
  e => window.__violations.push(e.blockedURI + ' ' + e.violatedDirective));
"""


def test_report_in_headless_chromium(finished_sweep, tmp_path: Path):
    chromium, driver_path = browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    sweep, _ = finished_sweep
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CATCH_VIOLATIONS})
        driver.get((sweep / "report.html").as_uri())
        assert driver.execute_script("return document.readyState") == "complete"
        assert driver.execute_script("return typeof Plotly") == "object"
        assert len(driver.find_elements(By.CSS_SELECTOR, ".plotly-graph-div .main-svg")) >= 2

        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        assert driver.execute_script("return window.__violations") == []
        requests = [
            json.loads(e["message"])["message"]["params"]["request"]["url"]
            for e in driver.get_log("performance")
            if json.loads(e["message"])["message"]["method"] == "Network.requestWillBeSent"
        ]
        assert requests and all(url.startswith(("file://", "data:")) for url in requests), requests

        images = driver.execute_script("return Array.from(document.images).map(i => [i.alt, i.naturalWidth])")
        assert len(images) >= 10 and all(width > 0 for _, width in images), images

        def column(name: str) -> list[float]:
            headers = [h.text.strip() for h in driver.find_elements(By.CSS_SELECTOR, "#board th")]
            i = headers.index(name)
            cells = driver.find_elements(By.CSS_SELECTOR, f"#board tbody td:nth-child({i + 1})")
            return [float(c.get_attribute("data-value")) for c in cells]

        header = next(h for h in driver.find_elements(By.CSS_SELECTOR, "#board th") if h.text.strip() == "KL")
        header.click()
        ascending = column("KL")
        assert ascending == sorted(ascending) and ascending[0] != ascending[-1]
        header.click()
        assert column("KL") == sorted(ascending, reverse=True)

        driver.find_element(By.ID, "filter").send_keys("beta=4")
        visible = [r for r in driver.find_elements(By.CSS_SELECTOR, "#board tbody tr") if r.is_displayed()]
        assert len(visible) == 1 and "beta=4" in visible[0].text

        screenshot = tmp_path / "report.png"
        driver.save_screenshot(str(screenshot))
        assert screenshot.stat().st_size > 10_000
    finally:
        driver.quit()


# --- a job folder named like a script ------------------------------------------------------------------
# A folder name cannot hold '/': "<!--" opens a JavaScript comment that swallows the link's trailing /.
PAYLOAD = "javascript:void(document.title='pwned')<!--"
ENCODED = (
    "javascript%3Avoid%28document.title=%27pwned%27%29%3C%21--/"  # its link in the report: a relative path
)


def chromium_driver():
    """Headless Chromium through Selenium, catching CSP violations from the first script on."""
    chromium, driver_path = browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1400,1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CATCH_VIOLATIONS})
    return driver


def hostile_sweep(folder: Path) -> Path:
    """Two finished jobs, one in a folder named like a javascript: URL (no training: job files only)."""
    from tests.test_leaderboard import fake_job

    base = {"log_px_z_nats": -20.0, "active_units": 8, "latent_units": 10}
    fake_job(folder / "0_beta=1", ["beta=1"], {**base, "elbo_nats": -25.0, "kl_nats": 5.0})
    fake_job(folder / PAYLOAD, ["beta=4"], {**base, "elbo_nats": -27.0, "kl_nats": 1.0})
    return folder


def test_a_javascript_folder_link_runs_nothing_and_the_report_still_works(tmp_path: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from vaezoo.reports.html import write_report

    sweep = hostile_sweep(tmp_path / "sweep")
    report = write_report(sweep)
    driver = chromium_driver()
    try:
        driver.get(report.as_uri())
        title = driver.title
        assert title.startswith("vaezoo report")
        # The report's own scripts run under the hash-only CSP: plotly draws, the table sorts and filters.
        assert driver.execute_script("return typeof Plotly") == "object"
        assert len(driver.find_elements(By.CSS_SELECTOR, ".plotly-graph-div .main-svg")) >= 2
        header = next(h for h in driver.find_elements(By.CSS_SELECTOR, "#board th") if h.text.strip() == "KL")
        header.click()
        first = driver.find_element(By.CSS_SELECTOR, "#board tbody tr td").text
        header.click()
        assert driver.find_element(By.CSS_SELECTOR, "#board tbody tr td").text != first
        driver.find_element(By.ID, "filter").send_keys("beta=4")
        visible = [r for r in driver.find_elements(By.CSS_SELECTOR, "#board tbody tr") if r.is_displayed()]
        assert len(visible) == 1 and "beta=4" in visible[0].text
        assert driver.execute_script("return window.__violations") == []
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []

        # Clicking the job's folder link opens the folder (a relative file: path), runs nothing.
        (link,) = [
            a for a in driver.find_elements(By.LINK_TEXT, "job folder") if "pwned" in a.get_attribute("href")
        ]
        assert link.get_attribute("href") == f"{sweep.resolve().as_uri()}/{ENCODED}"
        link.click()
        WebDriverWait(driver, 10).until(lambda d: d.current_url != report.as_uri())
        time.sleep(1)  # time enough for a script the click might have started
        assert driver.title != "pwned"
        assert driver.current_url == f"{sweep.resolve().as_uri()}/{ENCODED}"

        # Even a raw javascript: link, had one slipped into the page, is blocked by the CSP.
        raw = report.with_name("raw.html")
        raw.write_text(report.read_text().replace(f"href='{ENCODED}'", 'href="' + PAYLOAD + '"'))
        driver.get(raw.as_uri())
        assert driver.execute_script("return typeof Plotly") == "object"
        (raw_link,) = [
            a for a in driver.find_elements(By.LINK_TEXT, "job folder") if "pwned" in a.get_attribute("href")
        ]
        assert raw_link.get_attribute("href") == PAYLOAD
        raw_link.click()
        WebDriverWait(driver, 10).until(lambda d: d.execute_script("return window.__violations.length"))
        time.sleep(1)
        assert driver.title == title != "pwned"
        violations = driver.execute_script("return window.__violations")
        assert any("script-src" in v for v in violations), violations

        # The control: without the CSP, the same raw link does run its script.
        open_page = report.with_name("no-csp.html")
        open_page.write_text(re.sub(r"<meta http-equiv='Content-Security-Policy'[^>]*>", "", raw.read_text()))
        driver.get(open_page.as_uri())
        (open_link,) = [
            a for a in driver.find_elements(By.LINK_TEXT, "job folder") if "pwned" in a.get_attribute("href")
        ]
        open_link.click()
        WebDriverWait(driver, 10).until(lambda d: d.title == "pwned")
    finally:
        driver.quit()
