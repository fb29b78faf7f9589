"""The results dataset's commit protocol and ledger, crash states simulated in-process
(test_nightly.py kills real processes at the same points)."""

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from vadctl.errors import StoreError, UsageError
from vadctl.nightly import results as dataset_module
from vadctl.nightly.ledger import Ledger, ScoreKey, Unit
from vadctl.nightly.results import ResultsDataset

POINTS = [
    "score.staged",
    "score.prepared",
    "score.regions_published",
    "score.events_published",
    "score.frames_published",
    "score.ledger_appended",
]


class Crash(Exception):
    pass


def unit(n: int, videos=("a", "b")) -> Unit:
    return Unit(
        unit_id=f"20240501T020000Z-abcdef-{n:04d}",
        run_id="20240501T020000Z-abcdef",
        model="toy",
        model_sha256="f" * 64,
        split="test",
        entries="velocity@123",
        date="2024-05-01",
        videos=[[v, f"fp-{v}"] for v in videos],
        parts={},
    )


def tables(videos=("a", "b")) -> dict:
    stamp = datetime(2024, 5, 1, 2, tzinfo=UTC)
    frames = pl.DataFrame({"video": [v for v in videos for _ in range(3)], "frame": [0, 1, 2] * len(videos)})
    frames = frames.with_columns(score=pl.lit(1.0), scored_at=pl.lit(stamp))
    regions = frames.head(2).select("video", "frame", x1=pl.lit(1.0))
    events = frames.head(1).select("video", start_frame=pl.lit(0), end_frame=pl.lit(2))
    meta = {"vadctl.kind": "test"}
    return {"frames": (frames, meta), "regions": (regions, meta), "events": (events, meta)}


def rows(root: Path, kind: str) -> int:
    files = list((root / kind).rglob("*.parquet"))
    return (
        pl.scan_parquet(str(root / kind / "**" / "*.parquet"), hive_partitioning=True).collect().height if files else 0
    )


def test_commit_puts_parts_in_partitions_and_records_the_unit(tmp_path: Path):
    results = ResultsDataset(tmp_path / "results")
    ledger = results.ledger()
    results.commit(unit(1), tables(), ledger)
    assert sorted(results.part_files("frames")) == [
        "frames/model=toy/date=2024-05-01/part-20240501T020000Z-abcdef-0001.parquet"
    ]
    assert (rows(results.root, "frames"), rows(results.root, "regions"), rows(results.root, "events")) == (6, 2, 1)
    assert not any(results.staging.iterdir())
    again = results.ledger()  # as the next run reads it
    assert ScoreKey("test", "a", "fp-a", "velocity@123", "f" * 64) in again
    assert ScoreKey("test", "a", "fp-OTHER", "velocity@123", "f" * 64) not in again
    meta = pl.read_parquet_metadata(results.root / again.units[unit(1).unit_id].parts["frames"])
    assert json.loads(meta["vadctl.unit"])["videos"] == [["a", "fp-a"], ["b", "fp-b"]]


@pytest.mark.parametrize("point", POINTS)
def test_a_crash_at_any_commit_point_is_finished_or_undone_by_recovery(tmp_path: Path, monkeypatch, point: str):
    results = ResultsDataset(tmp_path / "results")
    results.commit(unit(1, ("a",)), tables(("a",)), results.ledger())

    def crash(name: str) -> None:
        if name == point:
            raise Crash(name)

    monkeypatch.setattr(dataset_module, "fault_point", crash)
    with pytest.raises(Crash):
        results.commit(unit(2, ("b",)), tables(("b",)), results.ledger())
    for kind in ("frames", "regions", "events"):  # whatever is in place reads fine meanwhile
        rows(results.root, kind)
    monkeypatch.setattr(dataset_module, "fault_point", lambda name: None)
    ledger = results.ledger()
    found = results.recover(ledger)
    committed = point != "score.staged"  # prepared units are rolled forward, unprepared ones dropped
    assert found.dropped == ([] if committed else [unit(2).unit_id])
    assert ledger.has_unit(unit(2).unit_id) == committed
    assert (rows(results.root, "frames"), rows(results.root, "regions")) == ((6, 4) if committed else (3, 2))
    assert not any(results.staging.iterdir())
    assert results.recover(results.ledger()).notes() == []  # nothing left to do


def test_lost_ledger_lines_are_rebuilt_from_the_parts(tmp_path: Path):
    results = ResultsDataset(tmp_path / "results")
    results.commit(unit(1), tables(), results.ledger())
    (results.meta_dir / "ledger.jsonl").unlink()
    ledger = results.ledger()
    assert results.recover(ledger).adopted == [unit(1).unit_id]
    assert ScoreKey("test", "b", "fp-b", "velocity@123", "f" * 64) in results.ledger()


def test_a_torn_ledger_line_is_ignored_and_cut_before_the_next_append(tmp_path: Path):
    path = tmp_path / "ledger.jsonl"
    Ledger(path).append(unit(1))
    with path.open("a") as handle:
        handle.write('{"unit_id": "half')
    ledger = Ledger(path)
    assert list(ledger.units) == [unit(1).unit_id]
    ledger.append(unit(2, ("c",)))
    assert [json.loads(line)["unit_id"] for line in path.read_text().splitlines()] == [unit(1).unit_id, unit(2).unit_id]
    path.write_text("not json\n" + path.read_text())
    with pytest.raises(StoreError, match="line 1"):
        Ledger(path)


def test_model_names_must_make_safe_partition_values(tmp_path: Path):
    for bad in ("", "a/b", "x=y", "../up", "sp ace"):
        with pytest.raises(UsageError):
            ResultsDataset.part_path("frames", bad, "2024-05-01", "u")
