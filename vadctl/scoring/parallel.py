"""Scoring many videos in N local worker processes (`vadctl score --workers N`).

Every model scores each video on its own (training statistics only, smoothing within the video),
so videos can be scored anywhere and put back in order: the tables equal a serial run's. Each
worker loads the model file once, runs BLAS on one thread (as serial scoring does) and gives
torch cores // N threads.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from vadctl.common.progress import Progress
from vadctl.common.threads import blas_threads, limit_threads, threads_per_worker
from vadctl.models.files import load_model
from vadctl.scoring.backends import use_backend, use_classes
from vadctl.store import FeatureStore

_worker: dict = {}


def _init(model_path: Path, store_path: Path, backend: str, onnx_path: Path | None, threads: int, classes, weights):
    limit_threads(threads)

    loaded = load_model(model_path)
    use_backend(loaded, backend, onnx_path)
    use_classes(loaded, classes, weights)
    _worker["model"] = loaded.model
    _worker["store"] = FeatureStore(store_path, read_only=True)


def _score(split: str, video_id: str):

    with blas_threads():
        return next(iter(_worker["model"].score(_worker["store"], split, [video_id])))


def score_in_workers(
    model_path: Path,
    store_path: Path,
    split: str,
    videos: Sequence[str],
    backend: str,
    onnx_path: Path | None,
    workers: int,
    progress: Progress,
    classes: Sequence[str] | None = None,
    weights: Mapping[str, Path] | None = None,
) -> list:
    """VideoScores of `videos`, in their order, computed by `workers` processes."""
    context = multiprocessing.get_context("spawn")
    args = (model_path, store_path, backend, onnx_path, threads_per_worker(workers), classes, weights)
    results: dict[str, object] = {}
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init, initargs=args) as pool:
        pending = {pool.submit(_score, split, video_id): video_id for video_id in videos}
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                item = future.result()
                results[pending.pop(future)] = item
                progress.video_scored(item.video_id, len(item.frame_scores))
    return [results[v] for v in videos]
