"""onnxruntime session options for a part of a pipeline that shares the cores with other parts.

By default onnxruntime's intra-op threads spin for a while after each run, waiting for the next;
in an extract, where the detector, the appearance network, the flow threads and the decoder take
turns on the same cores, that spinning takes CPU time from whichever part runs next. Sessions made
here sleep when idle, and get the threads this worker may use (`None`: one per core).

Memory patterns (onnxruntime's plan of allocations, kept per input shape) are off: the appearance
network sees a different batch size in nearly every window (the crops of its frames), and kept
plans add up. Measured once (`benchmarks/memory.py --weighted`): the peak grew 150 MB from 200 to
2,000 frames with them, 65 MB without; at 6,000 frames the peak still grows (+160 MB from 200), so
this is not the whole story (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from typing import Any


def session_options(onnxruntime: Any, threads: int | None) -> Any:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_mem_pattern = False
    return options
