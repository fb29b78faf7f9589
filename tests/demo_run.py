"""`vadctl demo` as a user runs it (a process, the default 120-frame videos), run and then rerun on
the same folder and store once per test session: the demo test checks both outputs, the review
page's browser test opens the page it wrote.

Its two runs are a minute or more of CPU, mostly on one core, and so are most tests: they start in
the background with the session, at low priority (`nice`), on the core the tests leave idle, and the
tests that read them run last (`demo` fixture and `pytest_collection_modifyitems`, conftest)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
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


class BackgroundDemo:
    """The run and the rerun, one after the other, in a thread of this process; `result` waits."""

    def __init__(self, root: Path):
        self.folder, self.store = root / "demo", root / "default.zarr"
        self.args = ["demo", "--folder", str(self.folder), "--store", str(self.store), "-q"]
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
                return

    def result(self) -> DemoRun:
        self.thread.join()
        for run in self.runs:
            assert run.returncode == 0, f"{run.args}: exit code {run.returncode}\n{run.stdout}\n{run.stderr[-3000:]}"
        assert len(self.runs) == 2, "the demo was stopped"
        return DemoRun(self.folder, self.store, self.args, self.runs[0].stdout, self.runs[1].stdout)

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            if self.process is not None and self.process.poll() is None:
                self.process.kill()
        self.thread.join(timeout=60)
