"""Training loops of the neural models: steps, progress, checkpoints, resume.

A run is a number of optimisation steps. All randomness of step `i` (batch choice, dropout) is
derived from (seed, i), so a run resumed from a checkpoint at step k replays exactly the steps an
uninterrupted run would have taken: same seed ⇒ same weights. A checkpoint is one safetensors file
(module weights and buffers, optimizer tensors) whose header carries JSON: the step, the optimizer
hyper-parameters, the loss history and the run's identity (model, parameters apart from the run
length and device, features, training videos), which must match to resume. No pickle anywhere.

Progress goes to a callback (`vadctl.common.progress.Progress`), so the library stays free of any UI; `vadctl fit`
renders it with rich. Ctrl-C during training finishes the current step, saves a checkpoint and
stops (a second Ctrl-C stops at once).
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors import SafetensorError, safe_open

from vadctl.common.atomic import write_atomic
from vadctl.common.progress import Progress
from vadctl.common.specs import canonical_json
from vadctl.errors import ModelFileError, UsageError

if TYPE_CHECKING:  # torch is imported where it is used: the CLI starts without it
    import torch

CHECKPOINT_FORMAT = "vadctl-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_FILE = "checkpoint.safetensors"
META_KEY = "vadctl_checkpoint"


@dataclass
class TrainOptions:
    """How to run training (not what is learnt): where checkpoints go, resuming, progress."""

    checkpoint_dir: Path | None = None
    resume: bool = False
    checkpoint_every: int = 100
    progress: Progress = field(default_factory=Progress)
    notes: list[str] = field(default_factory=list)  # what the run did, for the caller to print
    # Stop after the step that reaches this much training time (seconds, resumed runs included):
    # a budget in time, not steps, for machines whose speed other jobs decide. The model then
    # holds the steps done; resuming with --resume continues from there.
    time_limit: float | None = None


def checkpoint_dir_for(model_path: Path) -> Path:
    """`<model file>.ckpt/`: checkpoints live beside the model file they will become."""
    return Path(f"{model_path}.ckpt")


def step_seed(seed: int, step: int, stream: int = 0) -> int:
    """A 63-bit seed for one step (and stream) of a run, independent of what ran before."""
    return int(np.random.SeedSequence([seed, step, stream]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def epoch_batch(seed: int, step: int, n_samples: int, batch_size: int) -> np.ndarray:
    """Sample indices of step `step`: epochs are seeded permutations, cut into whole batches."""
    per_epoch = max(n_samples // batch_size, 1)
    epoch, position = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n_samples)
    batch = order[position * batch_size : (position + 1) * batch_size]
    if len(batch) < batch_size:  # fewer samples than one batch: sample with replacement
        batch = np.random.default_rng([seed, epoch, position]).choice(n_samples, batch_size)
    return batch


# ----- checkpoints ------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    step: int
    history: list[dict[str, float]]
    pending: dict[str, list[float]]  # losses of steps since the last history entry
    seconds: float  # training time of all runs that led to this checkpoint


@dataclass
class TrainSummary:
    history: list[dict[str, float]]  # mean losses per `history_every` steps
    seconds: float  # training time summed over the interrupted and resumed runs
    steps: int = 0  # steps done (fewer than asked when the time limit stopped the run)


def _optimizer_parts(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    import torch

    state = optimizer.state_dict()
    tensors, plain_state = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optim.{name}.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain_state.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "plain_state": plain_state}


def save_checkpoint(
    folder: Path,
    step: int,
    identity: Mapping[str, Any],
    modules: Mapping[str, torch.nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    history: list[dict[str, float]],
    pending: Mapping[str, list[float]] | None = None,
    seconds: float = 0.0,
) -> Path:
    """Write atomically (temp file + rename): a killed run leaves the previous checkpoint whole."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module.{name}.{key}"] = value.detach().cpu().contiguous().clone()
    optim_meta = {}
    for name, optimizer in optimizers.items():
        part, meta = _optimizer_parts(name, optimizer)
        tensors |= part
        optim_meta[name] = meta
    meta = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "step": step,
        "identity": identity,
        "optimizers": optim_meta,
        "history": history,
        "pending": dict(pending or {}),
        "seconds": round(seconds, 3),
    }
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return write_atomic(
        folder / CHECKPOINT_FILE, lambda tmp: save_file(tensors, tmp, metadata={META_KEY: canonical_json(meta)})
    )


def _differences(saved: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(saved) | set(wanted))
    return [f"{k}: {saved.get(k)!r} → {wanted.get(k)!r}" for k in keys if saved.get(k) != wanted.get(k)]


def load_checkpoint(
    folder: Path,
    identity: Mapping[str, Any],
    modules: Mapping[str, torch.nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
) -> Checkpoint:
    """Restore modules and optimizers in place; the run identity must match the saved one."""
    path = Path(folder) / CHECKPOINT_FILE
    if not path.is_file():
        raise UsageError(f"{folder}: no checkpoint to resume from (drop --resume to start training afresh)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})[META_KEY])
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, KeyError, ValueError) as error:
        raise ModelFileError(f"{path}: not a readable vadctl checkpoint ({error})") from None
    if meta.get("format") != CHECKPOINT_FORMAT or meta.get("format_version") != CHECKPOINT_VERSION:
        raise ModelFileError(f"{path}: not a vadctl checkpoint of format {CHECKPOINT_VERSION}")
    wanted = json.loads(canonical_json(identity))
    changed = _differences(meta["identity"], wanted)
    if changed:
        raise UsageError(
            f"{path}: checkpoint belongs to another run ({'; '.join(changed)[:400]}); "
            "drop --resume to start afresh, or fit with the checkpoint's settings"
        )
    try:
        for name, module in modules.items():
            prefix = f"module.{name}."
            module.load_state_dict({k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)})
        for name, optimizer in optimizers.items():
            saved = meta["optimizers"][name]
            state: dict[int, dict[str, Any]] = {}
            prefix = f"optim.{name}."
            for key, value in tensors.items():
                if key.startswith(prefix):
                    index, _, field_name = key.removeprefix(prefix).partition(".")
                    state.setdefault(int(index), {})[field_name] = value
            for index, values in saved["plain_state"].items():
                state.setdefault(int(index), {}).update(values)
            groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in saved["param_groups"]]
            optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (RuntimeError, KeyError, ValueError) as error:
        raise ModelFileError(f"{path}: checkpoint does not fit this model: {str(error)[:300]}") from None
    return Checkpoint(
        int(meta["step"]), list(meta["history"]), dict(meta.get("pending", {})), float(meta.get("seconds", 0.0))
    )


# ----- the loop ---------------------------------------------------------------------------------
class _Interrupt:
    """Ctrl-C sets a flag that the loop checks between steps (main thread only)."""

    def __init__(self) -> None:
        self.requested = False

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if self.requested:  # second Ctrl-C: stop now
                signal.signal(signal.SIGINT, previous)
                raise KeyboardInterrupt
            self.requested = True

        signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


@dataclass
class Run:
    """One training run: what it trains and how its state is saved."""

    label: str
    total_steps: int
    identity: Mapping[str, Any]
    modules: Mapping[str, torch.nn.Module]
    optimizers: Mapping[str, torch.optim.Optimizer]
    step: Callable[[int], dict[str, float]]  # runs step i, returns its losses
    history_every: int = 10


def train(run: Run, options: TrainOptions) -> TrainSummary:
    """Run steps [start, total) where start is 0 or the resumed checkpoint's step."""
    folder = options.checkpoint_dir
    start, history, pending, before = 0, [], {}, 0.0
    if options.resume:
        if folder is None:
            raise UsageError("resuming needs a checkpoint folder (fit with an output path)")
        checkpoint = load_checkpoint(folder, run.identity, run.modules, run.optimizers)
        start, history, pending, before = checkpoint.step, checkpoint.history, checkpoint.pending, checkpoint.seconds
        if start > run.total_steps:
            raise UsageError(
                f"{folder}: checkpoint is at step {start}, beyond the {run.total_steps} steps asked for; "
                "ask for more steps (or epochs)"
            )
        options.notes.append(f"resumed from {folder} at step {start} of {run.total_steps}")
    elif folder is not None and (folder / CHECKPOINT_FILE).exists():
        options.notes.append(f"started afresh: the checkpoint in {folder} is replaced (use --resume to continue it)")

    started = time.perf_counter()

    def seconds() -> float:
        return before + time.perf_counter() - started

    def save(step: int) -> None:
        if folder is not None:
            save_checkpoint(folder, step, run.identity, run.modules, run.optimizers, history, pending, seconds())

    interrupt = _Interrupt()
    options.progress.train_started(run.label, run.total_steps, start)
    step = start
    try:
        with interrupt.deferred():
            while step < run.total_steps:
                for module in run.modules.values():
                    module.train()
                losses = run.step(step)
                step += 1
                for key, value in losses.items():
                    pending.setdefault(key, []).append(value)
                if step % run.history_every == 0 or step == run.total_steps:
                    history.append({"step": step, **{k: float(np.mean(v)) for k, v in pending.items()}})
                    pending = {}
                try:
                    options.progress.train_step(step, losses)
                except KeyboardInterrupt:
                    interrupt.requested = True
                if interrupt.requested:
                    save(step)
                    options.notes.append(f"interrupted at step {step}; checkpoint saved in {folder}")
                    raise KeyboardInterrupt
                if options.checkpoint_every > 0 and step % options.checkpoint_every == 0 and step < run.total_steps:
                    save(step)
                if options.time_limit is not None and seconds() >= options.time_limit and step < run.total_steps:
                    if pending:
                        history.append({"step": step, **{k: float(np.mean(v)) for k, v in pending.items()}})
                        pending = {}
                    options.notes.append(
                        f"time limit {options.time_limit:.0f} s reached at step {step} of {run.total_steps}"
                    )
                    break
        if step > start or not (folder and (folder / CHECKPOINT_FILE).exists()):
            save(step)
    finally:
        options.progress.train_finished()
        for module in run.modules.values():
            module.eval()
    return TrainSummary(history, seconds(), step)
