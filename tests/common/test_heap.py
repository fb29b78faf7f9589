"""glibc's mmap threshold fixed where a process extracts: a large block freed goes back to the OS,
and the next large block is mmapped again rather than carved from a thread's heap."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

# Frees an 8 MiB block, then asks for 2 MiB: prints whether that block was mmapped (mallinfo2's
# hblks before and after). With the dynamic threshold the free raises it to 8 MiB, so the 2 MiB block is not mmapped.
PROBE = """
import ctypes, sys
from vadctl.common import heap
if sys.argv[1] == "fixed":
    print(heap.return_large_buffers())
else:
    print(False)
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                      "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Info
libc.free(libc.malloc(8 << 20))
held = libc.mallinfo2().hblks
block = libc.malloc(2 << 20)
print(libc.mallinfo2().hblks - held)
"""


def probe(mode: str, **env: str) -> list[str]:
    import os

    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True, env={**os.environ, **env}
    )
    return done.stdout.split()


def test_a_freed_large_block_does_not_move_the_next_ones_into_the_heap():
    assert probe("dynamic") == ["False", "0"]  # glibc's default: the 2 MiB block came from the heap
    assert probe("fixed") == ["True", "1"]  # fixed threshold: mmapped, returned to the OS when freed


def test_a_threshold_the_user_set_is_kept():
    assert probe("fixed", MALLOC_MMAP_THRESHOLD_="65536")[0] == "False"


def test_an_extract_fixes_it_and_importing_does_not(tmp_path):
    from videos import make_video

    make_video(tmp_path / "v" / "a.avi", 6, seed=1)
    code = (
        "import sys; from vadctl.common import heap; from vadctl import api; print(heap._done);"
        "api.extract(sys.argv[1], store=sys.argv[2], features='frames'); print(heap._done)"
    )
    run = [sys.executable, "-c", code, str(tmp_path / "v"), str(tmp_path / "s.zarr")]
    assert subprocess.run(run, capture_output=True, text=True, check=True).stdout.split() == ["False", "True"]
