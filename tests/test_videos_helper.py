"""tests/videos.py skips a test only where PyAV lacks the encoder; any other encoding failure fails it."""

from pathlib import Path

import pytest
import videos
from videos import container_video, encode_with_pyav, has_encoder


def test_only_a_missing_encoder_skips(tmp_path: Path):
    assert has_encoder("mpeg4")
    assert not has_encoder("indeo3")  # FFmpeg decodes it, never encodes it
    with pytest.raises(pytest.skip.Exception, match="this PyAV build has no no-such-codec encoder"):
        encode_with_pyav(tmp_path / "v.avi", "no-such-codec", 4, {})
    assert not (tmp_path / "v.avi").exists()


def test_other_encoding_failures_are_raised_not_skipped(tmp_path: Path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OSError):  # PyAV's own error, a subclass of OSError: the test fails
        encode_with_pyav(tmp_path / "file" / "v.avi", "mpeg4", 4, {})
    assert encode_with_pyav(tmp_path / "v.avi", "mpeg4", 4, {}).stat().st_size > 0


def test_the_webm_subprocess_skips_on_a_missing_encoder_only(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(videos, "_WEBM_SCRIPT", f"import sys; sys.exit({videos.MISSING_ENCODER})")
    with pytest.raises(pytest.skip.Exception, match="no libvpx encoder"):
        container_video(tmp_path / "a.webm", 4)
    monkeypatch.setattr(videos, "_WEBM_SCRIPT", "raise OSError('disk full')")
    with pytest.raises(RuntimeError, match=r"(?s)libvpx failed \(exit 1\).*OSError: disk full"):
        container_video(tmp_path / "b.webm", 4)
