"""What the terminal shows: user-supplied names printed exactly as they are (never read as rich
markup), and native decoders' messages (FFmpeg's stderr) kept off it, their useful line in the
video's failure reason instead."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner
from videos import make_video

from vadctl.cli import app

runner = CliRunner()


def vadctl(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_brackets_in_paths_and_names_are_printed_as_they_are(model_store, tmp_path: Path):
    root = tmp_path / "[" / "x]"  # the path holds '[/x]', a closing tag to rich
    make_video(root / "cam[id].avi", 12, seed=1)
    make_video(root / "[bold]b.avi", 12, seed=2)
    (root / "bad[x].avi").write_bytes(b"not a video at all")
    store = root / "store[1].zarr"
    extract = vadctl("extract", root, "--store", store, "--features", "frames", "--scene", "[red]lobby")
    assert extract.exit_code == 1, extract.output  # the bad file fails; the rest is extracted
    assert "[/x]/bad[x].avi" in extract.stderr and "[/x]/store[1].zarr" in "".join(extract.stdout.split())
    info = vadctl("store", "info", store, "--videos")
    assert info.exit_code == 0, info.output
    flat = "".join(info.stdout.split())  # table cells may wrap
    for shown in ("cam[id]", "[bold]b", "bad[x]", "[red]lobby", "[/x]/store[1].zarr"):
        assert shown in flat, (shown, info.stdout)
    model = root / "m[/x].safetensors"
    fit = vadctl("fit", "-m", "aivad", "-s", model_store["store"], "-o", model, "-p", "n_folds=3", "-q")
    assert fit.exit_code == 0 and "m[/x].safetensors" in "".join(fit.stdout.split()), fit.output
    described = vadctl("models", "--file", model)
    assert described.exit_code == 0 and "m[/x].safetensors" in "".join(described.stdout.split()), described.output


def _damaged_copies(folder: Path) -> tuple[Path, Path]:
    """An MPEG-4 part 2 .mp4 cut short (no index: cannot open) and one with garbled frame data
    (opens, decodes with complaints)."""
    import cv2

    source = folder / "source.mp4"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (160, 120), True)
    rng = np.random.default_rng(0)
    for t in range(60):
        frame = np.full((120, 160, 3), 60, np.uint8)
        frame[40:70, (2 * t) % 130 : (2 * t) % 130 + 30] = rng.integers(100, 255, (30, 30, 3), dtype=np.uint8)
        writer.write(frame)
    writer.release()
    data = bytearray(source.read_bytes())
    source.unlink()
    videos = folder / "videos"
    videos.mkdir()
    cut = videos / "cut.mp4"
    cut.write_bytes(bytes(data[: len(data) // 2]))
    rng = np.random.default_rng(1)
    for i in range(600, len(data) * 3 // 4, 97):
        data[i] = int(rng.integers(256))
    garbled = videos / "garbled.mp4"
    garbled.write_bytes(bytes(data))
    return cut, garbled


def test_decoder_messages_stay_off_the_terminal_and_name_the_failure(tmp_path: Path):
    _damaged_copies(tmp_path)
    command = [sys.executable, "-m", "vadctl", "extract", str(tmp_path / "videos"), "--store", str(tmp_path / "s")]
    done = subprocess.run([*command, "--features", "frames", "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stderr
    leaked = [line for line in done.stderr.splitlines() if "@ 0x" in line or "video_reader.cc" in line]
    assert not leaked, done.stderr
    report = json.loads(done.stdout)
    failed = {r["video"]: r["error"] for r in report["videos"] if r["status"] == "failed"}
    assert "moov atom not found" in failed["cut"], failed
    # a decoding error in a ranged read: FFmpeg's own words, in the reason
    assert "decoding failed at frames" in failed["garbled"] and "mpeg4: " in failed["garbled"], failed
    assert not done.stderr.strip(), done.stderr  # the report says it all
