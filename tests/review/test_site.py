"""`vadctl review`: the static review site (vadctl/review/site*.py), without a browser.

The browser checks are in test_site_browser.py; these pin what the files hold: every event has an
entry, sources that went bad are notes (never a crash), user strings are escaped, reruns render
only what is new, a killed review leaves a page whose files all exist, bad input is one line."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import MALICIOUS
from typer.testing import CliRunner

from vadctl import api
from vadctl.cli import app
from vadctl.errors import UsageError
from vadctl.nightly.jobfile import load_job
from vadctl.review import site_media

runner = CliRunner()


def _events(results: Path) -> int:
    glob = str(results / "events" / "**" / "*.parquet")
    return duckdb.sql(f"select count(*) from read_parquet('{glob}', hive_partitioning=true)").fetchall()[0][0]


def _referenced(page: Path) -> list[Path]:
    text = (page / "index.html").read_text()
    return [page / html.unescape(m) for m in re.findall(r'(?:src|href)="([^"#][^"]*)"', text)] + [
        page / html.unescape(m) for m in re.findall(r'data-clip="([^"]+)"', text)
    ]


def test_every_event_has_an_entry_with_pictures_and_timelines(review_site):
    page, report = review_site.page, review_site.report
    total = _events(review_site.results)
    assert total == 7 and report.events == report.shown == total
    text = (page / "index.html").read_text()
    assert text.count('<article class="event"') == total
    assert f'<span id="total-events">{total}</span>' in text
    for entry in (page / "events").iterdir():
        info = json.loads((entry / "entry.json").read_text())
        assert (entry / "timeline.svg").is_file() and info["timeline"]
        assert info["media"] == (entry / "strip.png").is_file() == (entry / "clip.webp").is_file()
    assert all(path.exists() for path in _referenced(page))
    assert len(list((page / "videos").glob("*.svg"))) == total  # one scored video per event here


def test_sources_gone_changed_or_undecodable_are_notes(review_site):
    notes = review_site.report.notes
    assert len(notes) == 3, notes
    joined = "\n".join(notes)
    assert "gone.avi: the video has been deleted or moved since it was scored" in joined
    assert "changed.avi: the video has changed since it was scored" in joined
    assert re.search(r"broken\.avi.*cannot decode|cannot decode.*broken\.avi", joined)
    text = (review_site.page / "index.html").read_text()
    assert text.count('<p class="note">') == 3
    with_media = [e for e in (review_site.page / "events").iterdir() if (e / "strip.png").exists()]
    assert len(with_media) == 4  # c1, c2, c3 and the malicious name still have pictures


def test_user_strings_are_escaped(review_site):
    text = (review_site.page / "index.html").read_text()
    assert MALICIOUS not in text
    assert html.escape(MALICIOUS) in text
    assert "<script" not in text.replace('<script src="assets/review.js" defer></script>', "")


def test_job_ends_with_a_review_page(review_site):
    report = review_site.run_report
    assert report.review == str(review_site.job.parent / "review" / "index.html")
    assert report.to_dict()["review"] == report.review and report.review_error is None
    assert Path(report.review).read_text().count('<article class="event"') == 7


def test_rerun_with_nothing_new_renders_nothing(review_site, tmp_path):
    page = shutil.copytree(review_site.page, tmp_path / "page")
    before = {p: p.stat().st_mtime_ns for p in (page / "events").rglob("*")}
    report = api.review(review_site.results, page)
    assert (report.rendered, report.kept, report.notes) == (0, 7, [])
    assert {p: p.stat().st_mtime_ns for p in (page / "events").rglob("*")} == before


def test_rerun_adds_only_new_events(review_site, tmp_path):
    page = tmp_path / "page"
    first = api.review(review_site.results, page, top=2)
    assert (first.events, first.shown, first.rendered) == (7, 2, 2)
    kept = {p.name: p.stat().st_ino for p in (page / "events").iterdir()}
    second = api.review(review_site.results, page)
    assert (second.rendered, second.kept) == (5, 2)
    assert {p.name: p.stat().st_ino for p in (page / "events").iterdir() if p.name in kept} == kept


def test_a_killed_review_leaves_a_whole_page_and_the_rerun_finishes(review_site, tmp_path, monkeypatch):
    page = tmp_path / "page"
    api.review(review_site.results, page, top=1)
    index = (page / "index.html").read_text()
    calls = []
    real = site_media.write_media

    def dies_on_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill mid-entry: the folder stays under its temporary name
        return real(*args, **kwargs)

    monkeypatch.setattr(site_media, "write_media", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        api.review(review_site.results, page)
    assert (page / "index.html").read_text() == index  # the old page, whole
    assert any(p.name.startswith(".tmp-") for p in (page / "events").iterdir())
    monkeypatch.setattr(site_media, "write_media", real)
    report = api.review(review_site.results, page)
    assert report.shown == 7 and not any(p.name.startswith(".") for p in (page / "events").iterdir())
    assert all(path.exists() for path in _referenced(page))


def test_filters_and_an_empty_selection(review_site, tmp_path):
    report = api.review(review_site.results, tmp_path / "one", video="c?", model="aivad", since="2000-01-01")
    assert report.events == 3  # c1, c2, c3 (a glob: "changed" is longer)
    empty = api.review(review_site.results, tmp_path / "none", video="c0")  # scored, no event
    assert empty.events == 0
    assert 'id="no-events"' in (tmp_path / "none" / "index.html").read_text()


def test_a_scores_file_of_vadctl_score(review_site, tmp_path):
    site = review_site.job.parent
    scores = api.score(site / "models" / "aivad.safetensors", site / "archive.zarr", "test", tmp_path / "s.parquet")
    report = api.review(scores, tmp_path / "page")
    events = pl.read_parquet(api.beside(scores, "events"))
    assert report.events == len(events) > 0
    assert report.rendered == report.shown


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: p, "empty folder, not a vadctl results dataset"),
        (lambda p: (p / "notes.txt").write_text("x") and p, "not a vadctl results dataset"),
        (lambda p: (p / "frames").mkdir() or p, "empty results dataset: nothing scored yet"),
        (lambda p: p / "missing", "no such results dataset or scores file"),
        (lambda p: (p / "x.parquet").write_text("not parquet") and p / "x.parquet", "not a results dataset folder"),
    ],
)
def test_bad_results_are_one_line_errors(tmp_path, make, problem):
    folder = tmp_path / "results"
    folder.mkdir()
    results = make(folder)
    result = runner.invoke(app, ["review", str(results), "--out", str(tmp_path / "page")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and str(results) in lines[0] and problem in lines[0], result.output


def test_review_table_of_a_job_file(tmp_path):
    store, cam = tmp_path / "s.zarr", tmp_path / "cam"
    cam.mkdir()
    base = f'store = "{store}"\nresults = "r"\n[[sources]]\nroot = "cam"\n'
    job = tmp_path / "job.toml"
    job.write_text(base + '[review]\nout = "page"\ntop = 20\n')
    loaded = load_job(job)
    assert (loaded.review, loaded.review_top) == (tmp_path / "page", 20)
    for bad, problem in (("[review]\ntop = 2\n", "missing required key 'out'"), ('[review]\nout = "p"\nx = 1\n', "x")):
        job.write_text(base + bad)
        with pytest.raises(UsageError, match=problem):
            load_job(job)


def test_verdicts_export_reads_as_labels(tmp_path):
    from vadctl.review.metrics import read_labels

    csv = tmp_path / "verdicts.csv"
    csv.write_text('video,start_frame,end_frame,verdict\nc1,2,4,false_alarm\n"a,b",0,1,reviewed\nc1,3,4,false_alarm\n')
    labels = read_labels(csv)
    assert labels.rows() == [("c1", 2, 0), ("c1", 3, 0), ("c1", 4, 0), ("a,b", 0, 1), ("a,b", 1, 1)]
    csv.write_text("video,start_frame,end_frame,verdict\nc1,2,4,maybe\n")
    with pytest.raises(UsageError, match="verdict 'maybe'"):
        read_labels(csv)
