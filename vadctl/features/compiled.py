"""Networks compiled to ONNX once per weight file and kept on disk, so a CPU extract never imports torch.

Importing torch costs a process about 200 MB of memory and exporting a network to ONNX as much
again (measured on the weighted extract: peak 990 MB with the in-process export, 660 MB without
torch), for a graph that depends only on the weights. So the export runs once, in a child process
(`python -m MODULE ...`, which exits and returns its memory), and writes the graph here; every
later run and every worker reads the file.

Where: `$VADCTL_COMPILED_DIR`, default `~/.cache/vadctl/compiled` (under `$XDG_CACHE_HOME` when
set). Each graph is one file, `NAME.vadctl-onnx`, replaced atomically: a line of JSON recording the
sha256 of the graph and of the weights it came from, then the graph. A file whose graph does not
match its digest (damaged) or that came from other weights is never run: the graph is compiled
again. It is a cache: deleting the folder costs one export per weight file.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from vadctl.common.atomic import write_atomic
from vadctl.errors import UsageError, WeightsError

COMPILED_DIR_ENV = "VADCTL_COMPILED_DIR"
EXIT_USAGE, EXIT_WEIGHTS = 2, 3  # how the exporting child says which error it raised
EXPORT_TIMEOUT_S = 900
SUFFIX = ".vadctl-onnx"


def compiled_dir() -> Path:
    if os.environ.get(COMPILED_DIR_ENV):
        return Path(os.environ[COMPILED_DIR_ENV]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "vadctl" / "compiled"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_compiled(name: str, weights_sha256: str, folder: Path | None = None) -> bytes | None:
    """The graph compiled as `name` from these weights, or None when absent, damaged or from other weights."""
    try:
        data = ((folder or compiled_dir()) / f"{name}{SUFFIX}").read_bytes()
        head, graph = data.split(b"\n", 1)
        record = json.loads(head)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("weights_sha256") != weights_sha256:
        return None
    return graph if record.get("onnx_sha256") == _digest(graph) else None


def write_compiled(path: Path, graph: bytes, weights_sha256: str, **about: str) -> None:
    """One file, replaced atomically: a line of JSON (the digests) then the ONNX graph."""
    record = {"weights_sha256": weights_sha256, "onnx_sha256": _digest(graph), **about}
    head = json.dumps(record).encode() + b"\n"
    write_atomic(path, lambda tmp: Path(tmp).write_bytes(head + graph))


def compiled(name: str, weights_sha256: str, module: str, args: list[str], what: str) -> bytes:
    """The graph `name`, compiled now by `python -m module *args --out PATH` when not on disk.

    The child writes the bare graph into a temporary folder; this process checks it into the cache
    (where the folder can be written: else it is used once). The child raises vadctl's errors as
    exit codes (`EXIT_USAGE`, `EXIT_WEIGHTS`) with the message as its last line of stderr; they are
    raised here as the same errors.
    """
    folder = compiled_dir()
    found = read_compiled(name, weights_sha256, folder)
    if found is not None:
        return found
    with tempfile.TemporaryDirectory(prefix="vadctl-compile-") as scratch:
        out = Path(scratch) / "graph.onnx"
        done = subprocess.run(
            [sys.executable, "-m", module, *args, "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=EXPORT_TIMEOUT_S,
        )
        if done.returncode != 0:
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            last = lines[-1] if lines else f"exit code {done.returncode}"
            if done.returncode == EXIT_USAGE:
                raise UsageError(last)
            if done.returncode == EXIT_WEIGHTS:
                raise WeightsError(last)
            raise WeightsError(f"{what}: compiling to ONNX failed: {last}")
        graph = out.read_bytes()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_compiled(folder / f"{name}{SUFFIX}", graph, weights_sha256, module=module)
    except OSError:
        pass  # a read-only cache: compiled again next time, never wrong
    return graph
