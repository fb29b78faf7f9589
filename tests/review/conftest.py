"""The review site's test data, built once per session: the nightly archive (tests/nightly.py) with
four more camera videos, each with an event: one that is then deleted, one corrupted in place (it
no longer decodes, size and mtime kept), one replaced by other content, and one named
`<script>alert(1)</script>.mp4`. The job writes its review page (`[review] out`), then the sources
change and a fresh review is written beside it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

MALICIOUS = "<script>alert(1)</script>"


@dataclass
class ReviewSite:
    job: Path
    results: Path
    run_report: object  # the job's RunReport (its review written before the sources changed)
    page: Path  # the review written after they changed
    report: object  # its SiteReport


@pytest.fixture(scope="session")
def review_site(nightly_archive: Path, tmp_path_factory) -> ReviewSite:
    from nightly import camera_video, copy_archive

    from vadctl import api

    job = copy_archive(nightly_archive, tmp_path_factory.mktemp("review") / "site")
    cam = job.parent / "cam1"
    for seed, name in enumerate(("gone.avi", "broken.avi", "changed.avi", f"{MALICIOUS}.mp4"), start=30):
        camera_video(cam / name, seed=seed)
    job.write_text(job.read_text() + '\n[review]\nout = "review"\n')
    run_report = api.run(job)
    assert run_report.exit_code == 0, run_report.to_dict()
    (cam / "gone.avi").unlink()
    broken = cam / "broken.avi"
    stat = broken.stat()
    broken.write_bytes(b"\0" * stat.st_size)
    os.utime(broken, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    camera_video(cam / "changed.avi", seed=99, fast=False)
    page = job.parent / "page"
    report = api.review(job.parent / "results", page)
    return ReviewSite(job, job.parent / "results", run_report, page, report)
