"""Where extraction work runs: here (serial), in a local process pool, or on a Ray cluster.

The unit of work is one video, or one chunk-aligned segment of a long video (`work`). Every
executor runs the same `Extractor` code on it in a worker that rebuilt the run's extractor from
its recipe (`vadctl.api.ExtractJob`), so a store written in parallel equals one written serially.
The driver (`driver.drive`) plans, hands out work, follows each video from its whole-video task
(or its prepare, segment and join tasks) to its result, and reports progress through the caller's
`progress=`; it writes nothing to the store itself. Executors only differ in where work runs and
how a dead worker is noticed and retried:

- `serial.SerialPool`: in this process, one item after another (`--workers 1`, the default).
- `local.LocalPool`: a `concurrent.futures.ProcessPoolExecutor` of N spawned processes.
- `ray_pool.RayPool`: Ray tasks (actors for weighted featurizers), retried by Ray.
"""

from __future__ import annotations

from vadctl.executors.base import Crashed, Pool

__all__ = ["Crashed", "Pool"]
