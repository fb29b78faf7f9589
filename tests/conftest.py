from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# The networks trained here are tiny: OpenMP pools sized to the cores gain nothing on them, and on
# a loaded machine their threads spin-wait for cores they do not get. Measured at load 8 on 2 cores:
# a step of the test FFP took 1.1 s on torch's 2 threads against 0.06 s on 1, so a 60-step fit
# fixture ran past the 300 s timeout. One thread unless the caller sets OMP_NUM_THREADS; set before
# torch is imported (it reads the variable then), and inherited by subprocesses (CLI runs, workers).
os.environ.setdefault("OMP_NUM_THREADS", "1")
if "torch" in sys.modules:  # imported already (a plugin): set its pool directly
    sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

from videos import Square, make_video

try:  # not installed in the lean pose environment (nox -s tests_pose)
    from hypothesis import Phase, settings
except ImportError:
    settings = None
if settings is not None:
    # `nox -s mutants` sets this: a failing example is enough to kill a mutant, so no shrinking
    # (which can take minutes per mutant), fixed examples and no example database.
    settings.register_profile(
        "mutants", phases=[Phase.explicit, Phase.reuse, Phase.generate], derandomize=True, database=None
    )
    if os.environ.get("VADCTL_HYPOTHESIS_PROFILE"):
        settings.load_profile(os.environ["VADCTL_HYPOTHESIS_PROFILE"])


@pytest.fixture(scope="session", autouse=True)
def compiled_graphs(tmp_path_factory):
    """ONNX graphs compiled by the tests (`vadctl.features.compiled`) go to a folder of this
    session's, never the user's cache; inherited by subprocesses (CLI runs, workers)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VADCTL_COMPILED_DIR", str(tmp_path_factory.mktemp("compiled")))
        yield


@pytest.fixture(scope="session")
def demo_in_background(tmp_path_factory):
    from demo_run import BackgroundDemo, shared_demo

    if "PYTEST_XDIST_WORKER" not in os.environ:  # no pytest-xdist workers
        demo = BackgroundDemo(tmp_path_factory.mktemp("demo"))
    else:  # the workers' base temp folders share a parent
        demo = shared_demo(tmp_path_factory.getbasetemp().parent / "demo")
    yield demo
    demo.stop()


@pytest.fixture(scope="session", autouse=True)
def start_the_demo_with_the_session(request):
    """`vadctl demo` starts with the session when a selected test reads it (tests/demo_run.py)."""
    if any(reads_the_demo(item) for item in request.session.items):
        request.getfixturevalue("demo_in_background")


@pytest.fixture(scope="session")
def demo(demo_in_background):
    """The demo's run and rerun (tests/demo_run.py), once both are done."""
    return demo_in_background.result()


def reads_the_demo(item) -> bool:
    return "demo" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(items):
    """Tests that read the demo run last: it runs in the background meanwhile (tests/demo_run.py)."""
    items.sort(key=reads_the_demo)


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


@pytest.fixture(scope="module")
def chunk_sized_shards():
    """Shards of one inner chunk: segments of a long video are cut on shard boundaries, and with
    the default shards a test-sized video is one shard; so the segment tests (a 136-frame video in
    64-frame segments) run with shards no larger than a chunk (`pytest.mark.usefixtures`)."""
    from vadctl.store import zarrio

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(zarrio.SHARD_BYTES_ENV, str(zarrio.CHUNK_BYTES))
        yield


MODEL_FEATURES = ("flow", "regions", "velocity", "motion")
N_FRAMES, WIDTH = 40, 96


def _walkers(rng, n: int) -> list[Square]:
    """Normal traffic: squares at walking speed in the bottom band of the frame."""
    return [
        Square(float(rng.uniform(-10, 60)), float(rng.uniform(28, 44)), float(rng.uniform(2.5, 3.5)), 0.0)
        for _ in range(n)
    ]


def _visible(square: Square) -> list[int]:
    return [t for t in range(N_FRAMES) if -square.size < square.x + square.dx * t < WIDTH]


def build_model_store(root: Path) -> dict:
    """Train: squares at walking speed in the bottom band. Test splits, each with its labels:
    'fast'  a square 3× faster than any walker (AI-VAD's kind of anomaly);
    'zone'  a square at walking speed in the top band nobody uses (FUVAS's kind: where, not how fast);
    'same'  like training, with random labels (a sanity case: AUROC should be near 0.5)."""
    import numpy as np

    from vadctl import api

    rng = np.random.default_rng(0)
    videos = root / "videos"
    for i in range(6):
        make_video(videos / "train" / f"t{i}.avi", N_FRAMES, seed=i, squares=_walkers(rng, 3))
    labels = ["video,frame,label"]
    for kind, odd in (
        ("fast", lambda: Square(-16.0 - 8 * 15, float(rng.uniform(28, 40)), 8.0, 0.0)),
        ("zone", lambda: Square(-16.0 - 3 * 12, 2.0, 3.0, 0.0)),
    ):
        for i in range(3):
            anomaly = odd()
            make_video(videos / kind / f"{kind[0]}{i}.avi", N_FRAMES, seed=10 + i, squares=[*_walkers(rng, 2), anomaly])
            shown = set(_visible(anomaly))
            labels += [f"{kind[0]}{i},{t},{int(t in shown)}" for t in range(N_FRAMES)]
    for i in range(3):
        make_video(videos / "same" / f"s{i}.avi", N_FRAMES, seed=20 + i, squares=_walkers(rng, 3))
        labels += [f"s{i},{t},{int(rng.random() < 0.5)}" for t in range(N_FRAMES)]
    (root / "labels.csv").write_text("\n".join(labels) + "\n")
    for split in ("train", "fast", "zone", "same"):
        api.extract([videos / split], root / "store.zarr", split, MODEL_FEATURES, clip_len=8, clip_stride=4)
    return {"store": root / "store.zarr", "labels": root / "labels.csv", "videos": videos}


@pytest.fixture(scope="session")
def model_store(tmp_path_factory) -> dict:
    return build_model_store(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def nightly_archive(tmp_path_factory) -> Path:
    """A camera folder already extracted, a fitted AI-VAD model and a job file (tests/nightly.py)."""
    from nightly import build_archive

    return build_archive(tmp_path_factory.mktemp("nightly") / "base")
