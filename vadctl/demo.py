"""The built-in demo data set: a synthetic surveillance scene with labelled anomalies.

A static camera over a one-way walkway: textured pedestrians walk left to right at a normal pace
below a lawn that nobody enters. Training videos hold only that. Each test video adds one kind of
anomaly: a cyclist far faster than walkers, a pedestrian walking against the flow, or someone who
steps onto the lawn and loiters there. Ground truth is the frames in which the anomalous actor is
doing the anomalous thing (labels.csv: video,frame,label,class, the class being the anomaly kind).
For weak supervision, `n_weak` more training videos each show one anomaly and are labelled only
at the video level (video_labels.csv: video,label,class; train/ videos normal, weak/ anomalous).
Every video's crowd density is drawn from the same range, normal or not, so nothing but the
anomaly tells them apart. Everything is generated from a seed, so the demo is reproducible.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vadctl import defaults

WIDTH, HEIGHT, FPS = 320, 192, 15
WALKWAY = (92, 176)  # y range where feet may be
LAWN = (0, 70)  # y range of the lawn (the forbidden zone)
WALK_SPEED = (1.4, 2.4)  # px / frame
ANOMALIES = ("fast", "against", "loiter")  # the demo's kinds, in turn
# "bike": a cyclist only about twice a walker's pace, close to Ped2's cyclists (not in the default
# cycle; the weak-supervision study uses it for a hard case)
KINDS = (*ANOMALIES, "bike")
DENSITY = (0.05, 0.05)  # walkers entering per frame, drawn per video (a range for studies)


@dataclass
class Actor:
    """Something that moves through the scene; `path(t)` gives its position, or None when absent."""

    kind: str
    width: int
    height: int
    texture: np.ndarray
    positions: dict[int, tuple[float, float]] = field(default_factory=dict)
    anomalous_frames: set[int] = field(default_factory=set)
    phase: float = 0.0


def _background(rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(0, 1, (HEIGHT // 4, WIDTH // 4))
    smooth = cv2.resize(cv2.GaussianBlur(noise, (0, 0), 1.2), (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    frame = np.clip(118 + 10 * smooth + rng.normal(0, 3, (HEIGHT, WIDTH)), 0, 255)
    grass = np.clip(72 + 14 * cv2.resize(rng.normal(0, 1, (HEIGHT // 2, WIDTH // 2)), (WIDTH, HEIGHT)), 0, 255)
    frame[LAWN[0] : LAWN[1]] = grass[LAWN[0] : LAWN[1]]
    frame[LAWN[1] : LAWN[1] + 3] = 160  # kerb
    for x in range(0, WIDTH, 40):  # paving joints
        frame[LAWN[1] + 3 :, x] = 96
    for y in range(LAWN[1] + 24, HEIGHT, 28):
        frame[y, :] = 100
    for x in (30, 150, 270):  # lamp posts
        frame[LAWN[1] - 40 : LAWN[1] + 6, x : x + 3] = 40
    return frame.astype(np.uint8)


def _texture(rng: np.random.Generator, width: int, height: int, base: int) -> np.ndarray:
    """Clothing-like blocky texture, coarse enough to survive blur in frame differencing."""
    cells = rng.integers(-45, 46, (height // 4 + 1, width // 4 + 1))
    blocks = np.kron(cells, np.ones((4, 4), dtype=np.int64))[:height, :width]
    return np.clip(base + blocks, 0, 255).astype(np.uint8)


def _walker(rng: np.random.Generator) -> Actor:
    width, height = int(rng.integers(11, 15)), int(rng.integers(28, 36))
    base = int(rng.choice([45, 70, 185, 215]))
    return Actor("walker", width, height, _texture(rng, width, height, base), phase=float(rng.uniform(0, 6.28)))


def _walk(actor: Actor, rng: np.random.Generator, start: int, n_frames: int, direction: int, speed: float) -> None:
    x = -actor.width - 2.0 if direction > 0 else WIDTH + 2.0
    y = float(rng.uniform(WALKWAY[0], WALKWAY[1])) - actor.height
    drift = float(rng.normal(0, 0.08))
    for t in range(start, n_frames):
        x += direction * speed
        y = float(np.clip(y + drift, WALKWAY[0] - actor.height, WALKWAY[1] - actor.height))
        if x > WIDTH + 2 or x < -actor.width - 3:
            break
        actor.positions[t] = (x, y)


def _draw(frame: np.ndarray, actor: Actor, t: int) -> None:
    x, y = actor.positions[t]
    x0, y0 = round(x), round(y)
    h, w = actor.texture.shape
    sprite = actor.texture.copy()
    if actor.kind == "walker":  # swinging legs: the lower third alternates between two poses
        swing = int(2 * np.sin(actor.phase + 0.6 * t))
        legs = sprite[2 * h // 3 :]
        sprite[2 * h // 3 :] = np.roll(legs, swing, axis=1)
    ys, xs = slice(max(y0, 0), min(y0 + h, HEIGHT)), slice(max(x0, 0), min(x0 + w, WIDTH))
    if ys.start >= ys.stop or xs.start >= xs.stop:
        return
    part = sprite[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    frame[ys, xs] = part
    if actor.kind == "walker":  # head
        cx, cy = x0 + w // 2, y0 - 4
        cv2.circle(frame, (cx, cy), 4, int(actor.texture[0, 0] // 2 + 60), -1)
    elif actor.kind == "cyclist":  # wheels
        for cx in (x0 + 4, x0 + w - 4):
            cv2.circle(frame, (cx, y0 + h), 5, 30, 2)


def _normal_crowd(rng: np.random.Generator, n_frames: int, density: float) -> list[Actor]:
    actors = []
    t = -int(rng.integers(60, 120))  # start mid-stream: people already on the walkway at frame 0
    while t < n_frames:
        actor = _walker(rng)
        _walk(actor, rng, t, n_frames, +1, float(rng.uniform(*WALK_SPEED)))
        actor.positions = {k: v for k, v in actor.positions.items() if k >= 0}
        actors.append(actor)
        t += int(rng.exponential(1 / density)) + 4
    return actors


def _anomaly(kind: str, rng: np.random.Generator, n_frames: int) -> Actor:
    start = int(rng.integers(n_frames // 4, n_frames // 3))
    if kind in ("fast", "bike"):
        actor = Actor("cyclist", 24, 16, _texture(rng, 24, 16, 200))
        speed = (6.5, 8.0) if kind == "fast" else (3.6, 4.4)
        _walk(actor, rng, start, n_frames, +1, float(rng.uniform(*speed)))
    elif kind == "against":
        actor = _walker(rng)
        _walk(actor, rng, start, n_frames, -1, float(rng.uniform(*WALK_SPEED)))
    elif kind == "loiter":
        actor = _walker(rng)
        x, y = float(rng.uniform(80, 220)), float(WALKWAY[0] + 6 - actor.height)
        target = float(rng.uniform(LAWN[0] + 14, LAWN[1] - actor.height - 8))
        for t in range(start, n_frames):  # walk up onto the lawn, then sway in place
            if y > target:
                y -= 1.6
            else:
                x += 1.2 * np.sin(0.35 * t)
            if y + actor.height <= LAWN[1] + 2:  # feet on the lawn: that is the anomaly
                actor.anomalous_frames.add(t)
            actor.positions[t] = (x, y)
        return actor
    else:
        raise ValueError(f"unknown anomaly {kind!r}")
    actor.anomalous_frames = set(actor.positions)
    return actor


def render_video(
    rng: np.random.Generator, n_frames: int, anomaly: str | None, density: float = 0.05, noise_level: float = 2.0
):
    """(frames (n, H, W) uint8 gray, labels (n,) int8) for one video; `noise_level` is the camera's
    pixel noise (σ in grey levels), a recording's signature like its crowd density."""
    background = _background(rng)
    actors = _normal_crowd(rng, n_frames, density)
    labels = np.zeros(n_frames, np.int8)
    if anomaly:
        actor = _anomaly(anomaly, rng, n_frames)
        actors.append(actor)
        labels[sorted(actor.anomalous_frames)] = 1
    noise = rng.normal(0, noise_level, (n_frames, HEIGHT, WIDTH))
    frames = np.empty((n_frames, HEIGHT, WIDTH), np.uint8)
    for t in range(n_frames):
        frame = background.copy()
        for actor in sorted((a for a in actors if t in a.positions), key=lambda a: a.positions[t][1] + a.height):
            _draw(frame, actor, t)
        frames[t] = np.clip(frame + noise[t], 0, 255)
    return frames, labels


def write_mp4(path: Path, frames: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT), True)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


@dataclass
class DemoData:
    root: Path
    train: Path
    test: Path
    labels: Path
    test_kinds: dict[str, str]
    weak: Path | None = None
    video_labels: Path | None = None


def test_kind(i: int, n_test: int) -> str | None:
    """The anomaly of test video i: the first is normal when there are more videos than kinds."""
    lead = n_test > len(ANOMALIES)
    return None if i == 0 and lead else ANOMALIES[(i - lead) % len(ANOMALIES)]


def generate(
    root: Path,
    n_train: int = 8,
    n_test: int = 4,
    n_frames: int = 120,
    seed: int = 7,
    n_weak: int = 0,
    density: tuple[float, float] = DENSITY,
    weak_density: tuple[float, float] | None = None,
    kinds: list[str | None] | None = None,
    weak_kinds: tuple[str, ...] = ANOMALIES,
    weak_noise: float = 2.0,
) -> DemoData:
    """Write train/*.mp4 (normal only), test/*.mp4 (one anomaly kind each, first one normal, or
    the given `kinds`), labels.csv (video,frame,label,class) and, with `n_weak`, weak/w*.mp4 (one
    anomaly each, kinds in turn) with video_labels.csv under `root`. `weak_density` (default:
    `density`) and `weak_noise` let a study give the weak anomalous videos another recording's
    traits (more crowded, noisier camera) than the normal ones."""
    root = Path(root)
    rng = np.random.default_rng(seed)

    def density_of(span: tuple[float, float]) -> float:
        # a fixed density draws nothing, so the default videos stay those the demo was checked on
        return float(span[0]) if span[0] == span[1] else float(rng.uniform(*span))

    for i in range(n_train):
        frames, _ = render_video(rng, n_frames, None, density_of(density))
        write_mp4(root / "train" / f"{i + 1:02d}.mp4", frames)
    test_kinds = {}
    rows = ["video,frame,label,class"]
    for i in range(n_test):
        kind = kinds[i] if kinds is not None else test_kind(i, n_test)
        video = f"{i + 1:02d}"
        frames, labels = render_video(rng, n_frames, kind, density_of(density))
        write_mp4(root / "test" / f"{video}.mp4", frames)
        test_kinds[video] = kind or "normal"
        rows += [f"{video},{t},{int(v)},{kind if v else ''}" for t, v in enumerate(labels)]
    labels_path = root / "labels.csv"
    labels_path.write_text("\n".join(rows) + "\n")
    (root / "kinds.json").write_text(json.dumps(test_kinds, indent=1))
    data = DemoData(root, root / "train", root / "test", labels_path, test_kinds)
    if n_weak:
        weak = ["video,label,class"] + [f"{i + 1:02d},0," for i in range(n_train)]
        for i in range(n_weak):
            kind = weak_kinds[i % len(weak_kinds)]
            frames, _ = render_video(rng, n_frames, kind, density_of(weak_density or density), weak_noise)
            write_mp4(root / "weak" / f"w{i + 1:02d}.mp4", frames)
            weak.append(f"w{i + 1:02d},1,{kind}")
        data.weak, data.video_labels = root / "weak", root / "video_labels.csv"
        data.video_labels.write_text("\n".join(weak) + "\n")
    return data


# ----- the end-to-end run behind `vadctl demo` ------------------------------------------------
DEMO_FEATURES = defaults.FEATURES  # the demo runs what `vadctl extract` runs by default
# The demo scene is a one-way walkway, so direction matters: AI-VAD gets 4 velocity direction bins
# (its published Ped2 setting, 1 bin, sees speed only and would miss walkers against the flow);
# plovad's velocity attribute gets the same 4 bins.
DEMO_MODELS = {"aivad": {"n_velocity_bins": 4}, "fuvas": {}, "plovad": {"velocity_bins": 4}}
WEAK_MODELS = ("plovad",)  # trained on split "weak" (train/ + weak/) with video_labels.csv
N_WEAK = 6  # anomalous training videos with video-level labels, two of each kind


@dataclass
class DemoResult:
    data: DemoData
    store: Path
    extract_reports: list
    models: dict[str, Path]
    scores: dict[str, Path]
    metrics: dict
    plots: dict[str, Path]
    review: Any = None  # the review page's SiteReport (open review.index in a browser)
    copied: list[str] = field(default_factory=list)  # train videos copied into split weak (up to date there)


def run(root: Path, store_path: Path, progress=None, seed: int = 7, n_frames: int = 120) -> DemoResult:
    """Generate the data (once per seed), then extract → fit → score → eval for each demo model;
    the unsupervised models fit on train/, plovad on train/ + weak/ with video-level labels; then
    the review page of every model's events (what a user opens the morning after a nightly run)."""
    from vadctl import api

    root = Path(root)
    marker = root / "GENERATED"
    stamp = f"seed={seed} frames={n_frames} version=2"
    if marker.exists() and marker.read_text() == stamp:
        data = DemoData(root, root / "train", root / "test", root / "labels.csv", {}, root / "weak")
        data.video_labels = root / "video_labels.csv"
    else:
        data = generate(root, n_frames=n_frames, seed=seed, n_weak=N_WEAK)
        marker.write_text(stamp)
    store = api.open_store(store_path, create=True, read_only=False)
    folders = {"train": [data.train], "test": [data.test], "weak": [data.train, data.weak]}
    reports, copied = [], []
    for split, roots in folders.items():
        if split == "weak":  # its normal videos are train/'s, extracted just above: copied, not decoded again
            copied = [r.video_id for r in store.videos("train") if store.copy_video("train", r.video_id, "weak")]
        reports.append(api.extract(roots, store, split, DEMO_FEATURES, scene="walkway", progress=progress))
    models, scores, metrics, plots = {}, {}, {}, {}
    for name, params in DEMO_MODELS.items():
        path = root / "models" / f"{name}.safetensors"
        if name in WEAK_MODELS:
            models[name] = api.fit(
                name, store, path, params, split="weak", video_labels=data.video_labels, progress=progress
            )
        else:
            models[name] = api.fit(name, store, path, params)
        scores[name] = api.score(models[name], store, "test", root / "scores" / f"{name}.parquet")
        plots[name] = root / "plots" / name
        metrics[name] = api.evaluate(scores[name], data.labels, plots=plots[name])
    review = api.review(root / "scores", root / "review", store=store.path, progress=progress)
    return DemoResult(data, store.path, reports, models, scores, metrics, plots, review, copied)
