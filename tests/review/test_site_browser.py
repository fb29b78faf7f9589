"""The review page in a real browser: Debian's Chromium driven by playwright (its Python package
only; `executable_path` points at the system browser, nothing is downloaded).

Skipped, with the reason, when playwright or a Chromium cannot be found here; CI installs both and
sets VADCTL_REQUIRE_BROWSER=1, which turns that skip into a failure. The screenshot is kept in
$VADCTL_ARTEFACTS (default: the session's temporary folder)."""

from __future__ import annotations

import csv
import os
import shutil
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import MALICIOUS

from vadctl.review.metrics import read_labels

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _chromium() -> str | None:
    found = os.environ.get("VADCTL_CHROMIUM")
    return found if found and Path(found).exists() else next(filter(None, map(shutil.which, BROWSERS)), None)


def _unavailable(reason: str):
    if os.environ.get("VADCTL_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and VADCTL_REQUIRE_BROWSER=1 (CI) needs the browser test to run")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright; no `playwright install` needed)")
    executable = _chromium()
    if executable is None:
        _unavailable("no Chromium found (apt-get install chromium, or set VADCTL_CHROMIUM)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, review_site):
    context = browser.new_context(viewport={"width": 1100, "height": 820}, accept_downloads=True)
    opened = context.new_page()
    seen = {"console": [], "failed": [], "requests": [], "dialogs": []}
    opened.on("console", lambda m: m.type in ("error", "warning") and seen["console"].append(m.text))
    opened.on("pageerror", lambda e: seen["console"].append(str(e)))
    opened.on("requestfailed", lambda r: seen["failed"].append(r.url))
    opened.on("request", lambda r: seen["requests"].append(r.url))
    opened.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    opened.goto((review_site.page / "index.html").as_uri())
    opened.wait_for_load_state("load")
    yield opened, seen
    context.close()


def _counts(results: Path, by: str) -> dict[str, int]:
    glob = str(results / "events" / "**" / "*.parquet")
    rows = duckdb.sql(f"select {by}, count(*) from read_parquet('{glob}', hive_partitioning=true) group by all")
    return {str(key): n for key, n in rows.fetchall()}


def _wait_until(page, condition: str, seconds: float = 30.0) -> None:
    """Poll `condition` from Python: `page.wait_for_function` evaluates its string inside the page,
    which the page's Content-Security-Policy (no eval) refuses whenever the first check is false."""
    deadline = time.monotonic() + seconds
    while not page.evaluate(f"() => Boolean({condition})"):
        assert time.monotonic() < deadline, f"not true within {seconds} s: {condition}"
        page.wait_for_timeout(100)


def _loaded(page, selector: str) -> bool:
    return page.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 0")


def test_overview_counts_match_the_results_dataset(page, review_site):
    page, seen = page
    table = {
        row.get_attribute("data-model"): int(row.locator("td").last.inner_text())
        for row in page.locator("#by-model tbody tr").all()
    }
    assert table == _counts(review_site.results, "model")
    nights = {
        row.get_attribute("data-night"): int(row.locator("td").last.inner_text())
        for row in page.locator("#by-night tbody tr").all()
    }
    assert nights == _counts(review_site.results, "date")
    assert int(page.inner_text("#total-events")) == sum(table.values()) == page.locator("article.event").count()
    assert seen["console"] == [] and seen["failed"] == [] and seen["dialogs"] == []
    assert all(url.startswith("file://") for url in seen["requests"])


def test_review_an_event_with_the_keyboard_and_export_verdicts(page, review_site, tmp_path_factory):
    page, seen = page
    # the malicious name is text: no alert, and its heading reads as the name itself
    assert MALICIOUS in page.locator("article.event .video-name").all_inner_texts()
    assert seen["dialogs"] == []
    # click into the top event from the table: its pictures and timeline render
    page.locator("#events-table tbody tr a").first.click()
    current = page.locator("article.event.current")
    assert current.count() == 1
    key = current.get_attribute("data-key")
    assert _loaded(page, f"#e-{key} img.timeline")
    current.locator("img.strip").scroll_into_view_if_needed()
    _wait_until(page, f"document.querySelector('#e-{key} img.strip').naturalWidth > 0")
    # o plays the clip
    page.keyboard.press("o")
    _wait_until(
        page, "document.querySelector('#clip-img').complete && document.querySelector('#clip-img').naturalWidth > 0"
    )
    assert page.locator("#clip-dialog").get_attribute("open") is not None
    page.keyboard.press("Escape")
    # j and k walk the entries in order
    order = page.eval_on_selector_all("article.event", "list => list.map(e => e.dataset.key)")
    page.keyboard.press("j")
    assert page.locator("article.event.current").get_attribute("data-key") == order[order.index(key) + 1]
    page.keyboard.press("k")
    assert page.locator("article.event.current").get_attribute("data-key") == key
    # the filter box hides what does not match
    page.fill("#filter", "gone")
    assert page.locator("article.event:visible").count() == 1
    page.fill("#filter", "")
    # sorting by length puts the longest first
    page.click("button[data-sort=length]")
    lengths = page.eval_on_selector_all("#events-table tbody tr", "rows => rows.map(r => Number(r.dataset.length))")
    assert lengths == sorted(lengths, reverse=True)
    # a false alarm, kept in localStorage and exported as CSV
    entry = page.locator(f"#e-{key}")
    entry.locator("button[data-verdict=false_alarm]").click()
    assert entry.get_attribute("data-verdict") == "false_alarm"
    page.reload()
    assert page.locator(f"#e-{key}").get_attribute("data-verdict") == "false_alarm"
    with page.expect_download() as download:
        page.click("#export")
    exported = tmp_path_factory.mktemp("verdicts") / "verdicts.csv"
    download.value.save_as(exported)
    rows = list(csv.DictReader(exported.open()))
    video, start, end = (page.locator(f"#e-{key}").get_attribute(a) for a in ("data-video", "data-start", "data-end"))
    assert rows == [{"video": video, "start_frame": start, "end_frame": end, "verdict": "false_alarm"}]
    assert set(read_labels(exported)["label"].to_list()) == {0}
    assert seen["console"] == [] and seen["failed"] == [] and seen["dialogs"] == []
    # the artefact: the page as a reviewer sees it, one event selected
    page.locator(f"#e-{key}").scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, 0)")
    folder = Path(os.environ.get("VADCTL_ARTEFACTS") or tmp_path_factory.mktemp("artefacts"))
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / "review.png"))
    assert (folder / "review.png").stat().st_size > 10_000


@pytest.mark.timeout(900)  # may wait for the demo (tests/demo_run.py): minutes on a loaded machine
def test_the_demo_review_page_shows_every_event_of_the_demo(browser, demo):
    """`vadctl demo` ends with a review page of its scores; opened from disk it lists every event of
    the demo's events files, with no console error and no request leaving the folder."""
    run = demo
    events = pl.concat(
        [pl.read_parquet(p).select("model") for p in sorted((run.folder / "scores").glob("*.events.parquet"))]
    )
    context = browser.new_context(viewport={"width": 1100, "height": 820})
    page = context.new_page()
    errors, requests = [], []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto((run.folder / "review" / "index.html").as_uri())
    page.wait_for_load_state("load")
    table = {
        row.get_attribute("data-model"): int(row.locator("td").last.inner_text())
        for row in page.locator("#by-model tbody tr").all()
    }
    expected = dict(events.group_by("model").len().iter_rows())
    assert table == expected and int(page.inner_text("#total-events")) == len(events)
    assert page.locator("article.event").count() == len(events)
    assert errors == [] and all(url.startswith("file://") for url in requests)
    context.close()
