from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from videos import Square, make_video


@pytest.fixture
def video_dir(tmp_path: Path) -> Path:
    """Three small lossless videos with squares moving at different speeds."""
    root = tmp_path / "videos"
    make_video(root / "a.avi", 24, seed=1, squares=[Square(4, 20, 3.0, 0.0)])
    make_video(root / "b.avi", 20, seed=2, squares=[Square(76, 10, -3.0, 1.0)])
    make_video(root / "cam" / "c.avi", 28, seed=3, squares=[Square(10, 40, 2.5, -0.5), Square(60, 5, 0.0, 2.0)])
    return root


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.zarr"
