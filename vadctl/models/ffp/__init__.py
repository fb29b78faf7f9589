"""FFP: Future Frame Prediction (Liu et al., CVPR 2018) on cached `frames`, split by job:

- `model.py`    the estimator: parameters, features, fit/score orchestration, persistence;
- `training.py` the networks' training run (U-Net + PatchGAN, losses, optional motion loss);
- `scoring.py`  prediction, PSNR scores and prediction-error boxes.

Importing the package registers the model.
"""

from vadctl.models.ffp.model import Ffp
from vadctl.models.ffp.scoring import history_indices, to_unit

__all__ = ["Ffp", "history_indices", "to_unit"]
