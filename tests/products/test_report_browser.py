"""The HTML report opened from disk (file://) in headless Chromium, as a reader would open it.

Needs Debian's `chromium` and `chromium-driver` (`make browser`, which `make test` runs, installs them)
and Selenium (the test extras). Without them these tests fail, saying how to install them. Screenshots
of the overview and of an AOI page are kept in build/test-artifacts/report/.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from pipeline.products.report import write_report
from pipeline.results import OutputLayout

from conftest import ROOT

ARTEFACTS = ROOT / "build" / "test-artifacts" / "report"
CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                "--window-size=1920,1080", "--disable-dev-shm-usage", "--hide-scrollbars")
INSTALL = ("run `make browser` (or, as root: apt-get update && apt-get install -y --no-install-recommends "
           "chromium chromium-driver)")


def _wait_for(condition, *, seconds: float = 10.0, step: float = 0.1):
    """Poll `condition()` until it returns something truthy; returns its last value."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by Debian's chromedriver (never Selenium Manager, which would go online)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("the browser tests need Selenium 4: .venv/bin/pip install 'selenium>=4.20' (test extras)")
    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver_path is None:
        missing = [name for name, path in (("chromium", binary), ("chromedriver", driver_path)) if path is None]
        pytest.fail(f"the browser tests need {' and '.join(missing)} on PATH: {INSTALL}")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def report(demo_run, tmp_path_factory) -> OutputLayout:
    run_dir = tmp_path_factory.mktemp("browser") / "demo_small"
    shutil.copytree(demo_run / "outputs" / "demo_small", run_dir)
    write_report(run_dir)
    return OutputLayout(run_dir)


def _open(browser, path: Path) -> list[dict]:
    """Open a page from disk, wait until it and its images are loaded; returns its SEVERE console messages."""
    browser.get_log("browser")  # drop the messages of earlier pages
    browser.get(path.resolve().as_uri())
    _wait_for(lambda: browser.execute_script(
        "return document.readyState === 'complete' && Array.from(document.images).every(i => i.complete)"))
    return [m for m in browser.get_log("browser") if m["level"] == "SEVERE"]


def test_every_page_loads_with_no_console_error_and_every_image_shown(browser, report):
    pages = sorted(report.report.glob("*.html"))
    assert [p.name for p in pages] == ["demo_mine.html", "index.html"]
    for page in pages:
        errors = _open(browser, page)
        assert not errors, f"{page.name}: console errors {errors}"
        images = browser.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
        assert images, f"{page.name} shows no image"
        broken = [src for src, complete, width in images if not (complete and width > 0)]
        assert not broken, f"{page.name}: images not loaded {broken}"
    assert len(images) >= 6 + 2  # the AOI page: a class map per period, class areas, the event chart


def test_the_video_loads_and_plays_from_disk(browser, report):
    """Debian's Chromium decodes H.264: the run's MP4 must load and play, not only be linked."""
    assert not _open(browser, report.report_page("demo_mine"))
    state = _wait_for(lambda: browser.execute_script(
        "const v = document.querySelector('video');"
        "return v.readyState >= 1 && v.videoWidth > 0 ? [v.readyState, v.videoWidth, v.videoHeight] : null"))
    error = browser.execute_script("const e = document.querySelector('video').error; return e && [e.code, e.message]")
    assert state, f"the video did not load (readyState < 1 after 10 s), media error {error}"
    assert state[1:] == [640, 360] and error is None  # the small demo's video size (tests/demo_small.yaml)
    browser.execute_script("const v = document.querySelector('video'); v.muted = true; v.play();")
    played = _wait_for(lambda: browser.execute_script("return document.querySelector('video').currentTime"))
    assert played and played > 0, "the video loaded but did not play"
    poster = browser.execute_async_script(
        "const done = arguments[arguments.length - 1]; const i = new Image();"
        "i.onload = () => done(i.naturalWidth); i.onerror = () => done(0);"
        "i.src = document.querySelector('video').poster;")
    assert poster > 0, "the video's poster image did not load"


def test_links_between_the_overview_and_the_aoi_pages_work(browser, report):
    from selenium.webdriver.common.by import By

    _open(browser, report.report_index)
    hrefs = sorted({a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a[href$='.html']")})
    assert [h.rsplit("/", 1)[-1] for h in hrefs] == ["demo_mine.html", "index.html"]
    for href in hrefs:  # every page linked from the overview opens as a report page
        browser.get(href)
        assert browser.find_elements(By.CSS_SELECTOR, "header.masthead h1"), f"{href} did not open as a report page"
    _open(browser, report.report_index)
    browser.find_element(By.CSS_SELECTOR, "#aoi-table a[href='demo_mine.html']").click()
    _wait_for(lambda: browser.current_url.endswith("/demo_mine.html"))
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("demo_mine")
    for href in {a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a[href$='.html']")}:
        assert href.endswith("/index.html"), f"the AOI page links to {href}"
    browser.find_element(By.CSS_SELECTOR, "nav.sections a.back").click()
    _wait_for(lambda: browser.current_url.endswith("/index.html"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "demo_small"


@pytest.mark.parametrize("width", [1400, 1920])
def test_every_table_fits_the_page_with_every_column_in_view(browser, report, width):
    """No table hides a column behind a horizontal scroll (the BACI table's interval and status included)."""
    for page in (report.report_index, report.report_page("demo_mine")):
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
        assert not _open(browser, page)
        tables = browser.execute_script(
            "return Array.from(document.querySelectorAll('table')).map(t => {"
            "const box = (t.closest('.table-scroll') || t.parentElement);"
            "return [t.id || t.className, box.scrollWidth, box.clientWidth, t.getBoundingClientRect().right,"
            "document.documentElement.clientWidth]; })")
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        assert len(tables) >= 3
        for name, scroll, client, right, page_width in tables:
            assert scroll <= client and right <= page_width, f"{page.name} at {width} px: table {name!r} overflows"


def test_screenshots_of_the_overview_and_an_aoi_page(browser, report, capsys):
    """A 1920x1080 viewport and the full page of each at 1,920 and 1,400 px, kept in build/test-artifacts/report/."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    saved = []
    for name, page in (("overview", report.report_index), ("aoi_demo_mine", report.report_page("demo_mine"))):
        assert not _open(browser, page)
        for suffix, width, height in (("1920x1080", 1920, 1080), ("full", 1920, None), ("1400_full", 1400, None)):
            browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": width, "height": height or 1000, "deviceScaleFactor": 1, "mobile": False})
            height = height or browser.execute_script("return document.documentElement.scrollHeight")
            browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
            assert browser.execute_script("return [window.innerWidth, window.innerHeight]") == [width, height]
            path = ARTEFACTS / f"{name}_{suffix}.png"
            assert browser.save_screenshot(str(path))
            saved.append(path)
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert all(p.stat().st_size > 10_000 for p in saved)
    with capsys.disabled():  # shown in the test output, also without -s
        print(f"\nreport screenshots: {ARTEFACTS} ({', '.join(p.name for p in saved)})")
