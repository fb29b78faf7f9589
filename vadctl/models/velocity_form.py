"""Which velocity form a camera's own normal video supports: speed alone, or speed with where the box is.

Seen at a slant with perspective (UCSD Ped1), a person's speed in pixels per frame depends on where
in the frame they walk, and AI-VAD's velocity GMM gains from the box's vertical position as one
more input; seen from above (Ped2), position says little about speed and only adds a dimension.
`velocity_position="auto"` asks the camera's training clips, without labels: on videos held out
of the fit, does knowing y predict v better than not knowing it? (benchmarks/choices.md, fourth pass.)
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from sklearn.model_selection import GroupKFold

from vadctl.models.density import GMMDensity, crossfit_scores


def marginal_log_density(density: GMMDensity, values: np.ndarray, columns: slice) -> np.ndarray:
    """log p of `values` (rows × the chosen columns) under a fitted full-covariance mixture's
    marginal over those columns: the same weights, each component's sub-mean and sub-covariance."""
    gmm = density.gmm_
    values = np.asarray(values, np.float64)
    per_component = []
    for weight, mean, covariance in zip(gmm.weights_, gmm.means_, gmm.covariances_, strict=True):
        mu, sigma = mean[columns], covariance[columns, columns]
        sign, logdet = np.linalg.slogdet(sigma)
        if sign <= 0:
            raise ValueError("a mixture component's marginal covariance is not positive definite")
        centred = values - mu
        mahalanobis = np.einsum("ij,ij->i", centred @ np.linalg.inv(sigma), centred)
        log_normal = -0.5 * (mahalanobis + logdet + len(mu) * np.log(2 * np.pi))
        per_component.append(np.log(weight) + log_normal)
    return logsumexp(np.stack(per_component), axis=0)


def position_gain(
    values: np.ndarray, groups: np.ndarray, n_bins: int, n_components: int, n_folds: int, random_state: int = 0
) -> float:
    """Mean held-out log p(v | y) − mean held-out log p(v), in nats per region.

    `values` are the velocity bins (the first `n_bins` columns) followed by the box's vertical
    position; `groups` the video of each row. Leave-video-out as the model's calibration
    (`n_folds` folds over the videos); both mixtures have the model's form."""
    values = np.asarray(values, np.float64)
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError("choosing the velocity form needs regions from at least two videos")
    velocity, position = slice(0, n_bins), slice(n_bins, values.shape[1])
    conditional = np.empty(len(values))
    marginal = np.empty(len(values))
    for fit_rows, held_rows in GroupKFold(n_splits=min(n_folds, n_groups)).split(values, groups=groups):
        joint = GMMDensity(n_components, random_state=random_state).fit(values[fit_rows])
        alone = GMMDensity(n_components, random_state=random_state).fit(values[fit_rows, velocity])
        held = values[held_rows]
        log_joint = -joint.score(held)
        conditional[held_rows] = log_joint - marginal_log_density(joint, held[:, position], position)
        marginal[held_rows] = -alone.score(held[:, velocity])
    return float(conditional.mean() - marginal.mean())


def choose_position(
    values: np.ndarray, groups: np.ndarray, n_bins: int, n_components: int, n_folds: int, random_state: int = 0
) -> tuple[str, float]:
    """("y" or "none", the gain that decided): "y" when position predicts held-out speed better."""
    gain = position_gain(values, groups, n_bins, n_components, n_folds, random_state)
    return ("y" if gain > 0 else "none"), gain


COMPONENT_CHOICES = (2, 4, 8)
COMPONENT_TOLERANCE = 0.01  # nats per region: a larger mixture must beat a smaller one by more


def heldout_scores(
    values: np.ndarray, groups: np.ndarray, n_components: int, n_folds: int, random_state: int = 0
) -> np.ndarray:
    """Each region's −log density under a `n_components` GMM fitted without its video
    (leave-video-out, `n_folds` folds over the videos): exactly the model's calibration scores."""
    make = lambda: GMMDensity(n_components, random_state=random_state)  # noqa: E731
    return crossfit_scores(np.asarray(values, np.float64), groups, make, n_folds)


def heldout_log_likelihood(
    values: np.ndarray, groups: np.ndarray, n_components: int, n_folds: int, random_state: int = 0
) -> float:
    """Mean held-out log density of the regions (`heldout_scores`)."""
    return float(-heldout_scores(values, groups, n_components, n_folds, random_state).mean())


def choose_components(
    values: np.ndarray,
    groups: np.ndarray,
    n_folds: int,
    random_state: int = 0,
    choices: tuple[int, ...] = COMPONENT_CHOICES,
    tolerance: float = COMPONENT_TOLERANCE,
) -> tuple[int, dict[int, float], np.ndarray]:
    """(the smallest component count whose held-out log-likelihood is within `tolerance` of the
    best, every count's, the chosen count's held-out scores: the calibration reuses them). A few
    short training videos overfit a large mixture, and held-out likelihood says so; a camera with
    much varied normal motion earns more components."""
    scores = {k: heldout_scores(values, groups, k, n_folds, random_state) for k in sorted(choices)}
    likelihood = {k: float(-each.mean()) for k, each in scores.items()}
    best = max(likelihood.values())
    chosen = next(k for k, value in likelihood.items() if value >= best - tolerance)
    return chosen, likelihood, scores[chosen]
