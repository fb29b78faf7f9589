"""`vadctl demo` as a user runs it (a process, the default 120-frame videos), run and then rerun on
the same folder and store once per test session: the demo test checks both outputs, the review
page's browser test opens the page it wrote.

Its two runs are a minute or more of CPU, mostly on one core, and so are most tests: they start in
the background with the session, at low priority (`nice`), on the core the tests leave idle, and the
tests that read them run last (`demo` fixture and `pytest_collection_modifyitems`, conftest).

With pytest-xdist, the workers share one demo: the first to start claims a folder all of them see
(`shared_demo`); the others wait for its outcome, which the runner writes there when done."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

NICENESS = "10"  # below the tests when they want both cores, not so low that a busy machine starves it


@dataclass
class DemoRun:
    folder: Path
    store: Path
    args: list[str]
    output: str  # the first run's stdout
    rerun_output: str  # the second run's, on the same folder and store


def _args(root: Path) -> tuple[Path, Path, list[str]]:
    folder, store = root / "demo", root / "default.zarr"
    return folder, store, ["demo", "--folder", str(folder), "--store", str(store), "-q"]


def _checked(runs: list[subprocess.CompletedProcess], root: Path) -> DemoRun:
    for run in runs:
        assert run.returncode == 0, f"{run.args}: exit code {run.returncode}\n{run.stdout}\n{run.stderr[-3000:]}"
    assert len(runs) == 2, "the demo was stopped"
    folder, store, args = _args(root)
    return DemoRun(folder, store, args, runs[0].stdout, runs[1].stdout)


OUTCOME = "outcome.json"  # the runs, written by the worker that ran them once both are done


class BackgroundDemo:
    """The run and the rerun, one after the other, in a thread of this process; `result` waits.
    `shared`: other test processes wait for it (`stop` then lets it finish rather than kill it)."""

    def __init__(self, root: Path, shared: bool = False):
        self.root, self.shared = root, shared
        self.folder, self.store, self.args = _args(root)
        self.runs: list[subprocess.CompletedProcess] = []
        self.process: subprocess.Popen | None = None
        self.stopped = False
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run_twice, name="vadctl-demo", daemon=True)
        self.thread.start()

    def _run_twice(self) -> None:
        nice = shutil.which("nice")
        command = [*([nice, "-n", NICENESS] if nice else []), sys.executable, "-m", "vadctl", *self.args]
        env = {**os.environ, "PYTHONIOENCODING": "utf-8"}  # rich draws its tables' lines in UTF-8
        for _ in range(2):
            with self.lock:
                if self.stopped:
                    return
                self.process = subprocess.Popen(
                    command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", env=env
                )
            out, err = self.process.communicate()
            self.runs.append(subprocess.CompletedProcess(command, self.process.returncode, out, err))
            if self.process.returncode != 0:
                break
        if self.shared:
            fields = [
                {"args": r.args, "returncode": r.returncode, "stdout": r.stdout, "stderr": r.stderr} for r in self.runs
            ]
            (self.root / f"{OUTCOME}.part").write_text(json.dumps(fields))
            os.replace(self.root / f"{OUTCOME}.part", self.root / OUTCOME)

    def result(self) -> DemoRun:
        self.thread.join()
        return _checked(self.runs, self.root)

    def stop(self) -> None:
        if self.shared:  # another worker may be waiting for it
            self.thread.join(timeout=900)
        with self.lock:
            self.stopped = True
            if self.process is not None and self.process.poll() is None:
                self.process.kill()
        self.thread.join(timeout=60)


class AwaitedDemo:
    """Another worker's demo: `result` waits for the outcome it writes."""

    def __init__(self, root: Path):
        self.root = root

    def result(self, timeout: float = 900.0) -> DemoRun:
        deadline = time.monotonic() + timeout
        while not (self.root / OUTCOME).exists():
            assert time.monotonic() < deadline, f"the demo run by another test worker did not finish in {timeout:.0f} s"
            time.sleep(0.5)
        runs = [subprocess.CompletedProcess(**fields) for fields in json.loads((self.root / OUTCOME).read_text())]
        return _checked(runs, self.root)

    def stop(self) -> None:
        pass


def shared_demo(root: Path) -> BackgroundDemo | AwaitedDemo:
    """The first test process to call this (for `root`, a folder all of them see) runs the demo;
    the others wait for it."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(root / "claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return AwaitedDemo(root)
    return BackgroundDemo(root, shared=True)
