"""vadctl: offline batch video anomaly detection over a cached Zarr feature store.

Expensive featurizers run once (`vadctl extract`); cheap models train and score on the cached
features only (`vadctl fit`, `vadctl score`); `vadctl eval` measures the result.
"""

__version__ = "0.1.0"

from vadctl.common import moved as _moved

_moved.install()  # old module paths (vadctl.specs, …) keep working for plug-ins
