"""A finished 2-job digits sweep: its leaderboard, its HTML report opened in headless Chromium, and
what it logged to W&B (read from the offline run files)."""

from __future__ import annotations

import json
import os
import shutil
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
