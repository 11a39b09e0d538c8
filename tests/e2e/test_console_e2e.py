"""`nocrud serve` in a real browser: headless Chromium driven by Selenium, real runs in Docker.

One story, as a user lives it, kept to small runs for CI's budget: start a run from
the form, watch its flows change without reloading, open the failing flow and read its
request, response and curl line; start a long run, get the 409 for a second one, cancel
the first, and find nothing left behind; a run started from a terminal (`nocrud up
--report-to`, recording into the same store) shows once, and the console's Cancel stops it
like Ctrl-C, leaving nothing behind; a run from the form passes, next to it in the history.
The screenshots in docs/ are taken here.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.conftest import NOCRUD, REPO, Harness

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
DOCS = REPO / "docs"

FLOWS = '''
import time

from nocrud import flow


@flow(tags=["console"])
def console_health_answers(ctx):
    """The app answers its health check."""
    ctx.api.get("/health", expect=200)


@flow(tags=["console"])
def console_missing_site(ctx):
    """Fails on purpose: the console shows its request, response and curl line."""
    ctx.login("editor", "editor-password")
    ctx.api.get("/api/sites/424242", expect=200)


@flow(tags=["slow"])
def console_slow(ctx):
    """Long enough to be cancelled."""
    time.sleep(300)
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def console_url(harness: Harness) -> Iterator[str]:
    """A real `nocrud serve` on 127.0.0.1 for a project of three flows; stopped after."""
    harness.flows(FLOWS)
    # Generous readiness limits: a shared CI machine under load starts apps slowly.
    config = harness.config(
        flows__path=str(harness.dir / "e2eflows"),
        run__parallel=2,
        timeouts__app_ready=300,
        timeouts__db_ready=300,
        # The store from nocrud.yaml, relative to it: `nocrud serve` and `nocrud up` share it.
        store__url="sqlite:///history/runs.db",
    )
    port = _free_port()
    log = (harness.dir / "serve.log").open("w")
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("NOCRUD_SERVE_TOKEN", None)
    serve = subprocess.Popen(
        [*NOCRUD, "-c", str(config), "serve", "--port", str(port)],
        cwd=harness.dir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/api/meta", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert serve.poll() is None, (harness.dir / "serve.log").read_text()
            assert time.monotonic() < deadline, "nocrud serve did not answer within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(timeout=90)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
        log.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(
            "chromium and chromedriver are not installed (Debian: chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def _until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def _shot(driver: Any, name: str) -> None:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(int(height), 700), 2400))
    driver.save_screenshot(str(DOCS / name))
    driver.set_window_size(1280, 1000)


def _start(driver: Any, url: str, **fields: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/new")
    for name, value in fields.items():
        element = driver.find_element(By.ID, name)
        element.clear()
        element.send_keys(value)
    driver.find_element(By.ID, "start-button").click()


def _text(driver: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, element_id).text)


def _statuses(driver: Any) -> dict[str, str]:
    script = (
        "return Object.fromEntries([...document.querySelectorAll('tr.flow')]"
        ".map(r => [r.dataset.flow, r.dataset.status]))"
    )
    return dict(driver.execute_script(script))


def test_console_in_a_browser(harness: Harness, console_url: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    # Start a run from the form: two flows, one of which fails.
    _start(browser, console_url, keyword="console and not slow", parallel="2")
    _until(lambda: "/runs/" in browser.current_url, 30, "the run page")
    run_url = browser.current_url
    # Mark this page: a reload would lose the mark, so what changes below changed live.
    browser.execute_script("window.nocrudMark = 'same page'")
    _until(
        lambda: (
            any(s in ("running", "passed", "failed") for s in _statuses(browser).values())
            or _text(browser, "run-status") not in ("queued", "running")
        ),
        600,
        "a flow to start",
    )
    assert _text(browser, "run-status") in ("running", "passed", "failed"), _text(browser, "log")
    assert browser.execute_script("return window.nocrudMark") == "same page"
    _until(
        lambda: browser.find_element(By.ID, "run-status").text in ("passed", "failed", "error"),
        900,
        "the run to end",
    )
    # The end reloads the page once to show the failures section.
    _until(lambda: browser.find_elements(By.CSS_SELECTOR, ".failure"), 30, "the failures")
    assert browser.find_element(By.ID, "run-status").text == "failed"
    assert _statuses(browser) == {
        "console_health_answers": "passed",
        "console_missing_site": "failed",
    }
    failure = browser.find_element(By.ID, "failure-console_missing_site")
    assert "GET http://127.0.0.1:" in failure.find_element(By.CSS_SELECTOR, ".request").text
    assert "/api/sites/424242" in failure.find_element(By.CSS_SELECTOR, ".request").text
    assert failure.find_element(By.CSS_SELECTOR, ".response").text.strip()
    curl = failure.find_element(By.CSS_SELECTOR, ".curl").text
    assert curl.startswith('curl -i -X GET "$APP"/api/sites/424242'), curl
    _until(lambda: _text(browser, "log").strip(), 10, "the run's log")
    _shot(browser, "console-run.png")

    browser.get(f"{console_url}/flows/console_missing_site")
    assert browser.find_elements(By.CSS_SELECTOR, ".strip .cell.failed")
    _shot(browser, "console-flow.png")

    # A long run, then a second start: 409 with a link to the first. Then cancel it.
    _start(browser, console_url, flows="console_slow", parallel="1")
    _until(lambda: "/runs/" in browser.current_url and browser.current_url != run_url, 30, "run 2")
    slow_url = browser.current_url
    _until(lambda: _statuses(browser).get("console_slow") == "running", 600, "the slow flow")
    _start(browser, console_url, keyword="console")
    message = _until(
        lambda: browser.find_element(By.ID, "form-message").text, 30, "the 409 message"
    )
    assert "already has an active run" in message
    link = browser.find_element(By.ID, "active-run-link").get_attribute("href")
    assert link == slow_url
    _shot(browser, "console-start.png")

    browser.get(slow_url)
    _until(lambda: browser.find_element(By.ID, "cancel").is_displayed(), 30, "the cancel button")
    browser.find_element(By.ID, "cancel").click()
    _until(
        lambda: browser.find_element(By.ID, "run-status").text == "cancelled",
        180,
        "the run to be cancelled",
    )
    _until(lambda: not harness.leftovers(), 60, "the cancelled run's containers to go")

    _cli_run_cancelled_from_the_browser(harness, console_url, browser)

    # A run from the form that passes, live, next to the terminal's run in the history.
    _start(browser, console_url, keyword="health", parallel="1")
    _until(lambda: "/runs/" in browser.current_url and browser.current_url != slow_url, 30, "run 4")
    _until(lambda: _text(browser, "run-status") == "passed", 600, "the passing run")
    assert _statuses(browser) == {"console_health_answers": "passed"}

    browser.get(console_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "table.runs tbody tr")
    assert [
        (r.find_element(By.CSS_SELECTOR, ".badge").text, r.find_elements(By.TAG_NAME, "td")[2].text)
        for r in rows
    ] == [
        ("passed", "console"),
        ("cancelled", "cli"),
        ("cancelled", "console"),
        ("failed", "console"),
    ]
    _shot(browser, "console-runs.png")


def _cli_run_cancelled_from_the_browser(harness: Harness, console_url: str, browser: Any) -> None:
    """A terminal's `nocrud up --report-to`, recording into the same store (store.url).

    It shows once (recorded and reported: one run), and the console's Cancel stops it
    like Ctrl-C: exit 130, its environment torn down, recorded as cancelled.
    """
    from selenium.webdriver.common.by import By

    log = harness.dir / "up.log"
    with log.open("w") as out:
        up = subprocess.Popen(
            [*NOCRUD, "up", "-f", "console_slow", "-j", "1", "--report-to", console_url],
            cwd=harness.dir,
            env={**os.environ, "NO_COLOR": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        api = requests.Session()

        def running() -> str:
            for run in api.get(f"{console_url}/api/runs", timeout=10).json()["runs"]:
                if run["trigger"] != "cli":
                    continue
                state = api.get(f"{console_url}/api/runs/{run['id']}", timeout=10).json()
                if [f["status"] for f in state["flows"]] == ["running"]:
                    return str(run["id"])
            assert up.poll() is None, log.read_text()
            return ""

        run_id = _until(running, 600, "the terminal's run to run its flow")
        listed = api.get(f"{console_url}/api/runs", params={"status": "running"}, timeout=10)
        assert [r["id"] for r in listed.json()["runs"]] == [run_id]  # one run, not two
        assert (harness.dir / "history" / "runs.db").is_file()  # store.url, beside nocrud.yaml

        browser.get(f"{console_url}/runs/{run_id}")
        assert "cli run of" in browser.find_element(By.CSS_SELECTOR, "p.meta").text
        _until(lambda: browser.find_element(By.ID, "cancel").is_displayed(), 30, "Cancel")
        browser.find_element(By.ID, "cancel").click()
        assert up.wait(timeout=180) == 130, log.read_text()
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    said = log.read_text()
    assert f"cancelled by the console (run {run_id}): stopping like Ctrl-C" in said, said
    assert "tearing down running environments" in said, said
    _until(
        lambda: browser.find_element(By.ID, "run-status").text == "cancelled",
        30,
        "the terminal's run to show cancelled",
    )
    run = api.get(f"{console_url}/api/runs/{run_id}", timeout=10).json()["run"]
    assert (run["status"], run["exit_code"], run["trigger"]) == ("cancelled", 130, "cli")
    _until(lambda: not harness.leftovers(), 60, "the cancelled run's containers to go")
