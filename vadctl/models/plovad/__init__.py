"""PLOVAD-based weakly supervised model (`plovad`), split by job:

- `model.py`      the estimator: labels, features, fit/score orchestration, persistence;
- `snippets.py`   what it reads of a video: snippets, their grid, appearance and regions;
- `attributes.py` unsupervised per-cell normality scores, the inputs the weak labels re-weight;
- `net.py`        the network: localization head, distance-aware temporal module, detection and classes;
- `training.py`   the joint MIL detection + localization + class loss and the training run;
- `outputs.py`    frame scores, heatmap boxes and class probabilities from snippet outputs;
- `prompts.py`    CLIP text prompts for the open vocabulary.

Importing the package registers the model.
"""

from vadctl.models.plovad.model import Plovad

__all__ = ["Plovad"]
