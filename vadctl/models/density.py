"""Density estimators on normal features (AI-VAD): GMM negative log-likelihood, kNN distance, and PCA
reconstruction error for clip-level attributes.

Both follow scikit-learn's conventions and can be saved as plain arrays. `crossfit_scores` scores
every training row with an estimator fitted without the row's own video (group k-fold; one fold
per video when there are few), which is how AI-VAD calibrates each feature type without letting
a video vouch for itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import faiss
import numpy as np
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GroupKFold

from vadctl.models.pca_state import pca_arrays, pca_from_arrays, squared_errors


class GMMDensity:
    """Anomaly score = −log p(x) under a Gaussian mixture fitted on normal features."""

    def __init__(self, n_components: int = 2, covariance_type: str = "full", random_state: int = 0):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.random_state = random_state

    def fit(self, features: np.ndarray) -> GMMDensity:
        features = np.asarray(features, dtype=np.float64)
        n_components = min(self.n_components, len(features))
        if n_components < 1:
            raise ValueError("GMM needs at least one training feature")
        self.gmm_ = GaussianMixture(
            n_components=n_components,
            covariance_type=self.covariance_type,
            reg_covar=1e-6,
            random_state=self.random_state,
        ).fit(features)
        return self

    def score(self, features: np.ndarray) -> np.ndarray:
        if len(features) == 0:
            return np.zeros(0)
        return -self.gmm_.score_samples(np.asarray(features, dtype=np.float64))

    def state(self) -> dict[str, np.ndarray]:
        g = self.gmm_
        return {
            "weights": g.weights_,
            "means": g.means_,
            "covariances": g.covariances_,
            "precisions_cholesky": g.precisions_cholesky_,
        }

    def load_state(self, arrays: Mapping[str, np.ndarray]) -> GMMDensity:
        gmm = GaussianMixture(n_components=len(arrays["weights"]), covariance_type=self.covariance_type)
        gmm.weights_ = np.asarray(arrays["weights"])
        gmm.means_ = np.asarray(arrays["means"])
        gmm.covariances_ = np.asarray(arrays["covariances"])
        gmm.precisions_cholesky_ = np.asarray(arrays["precisions_cholesky"])
        self.gmm_ = gmm
        return self


class KNNDistance:
    """Anomaly score = mean Euclidean distance to the k nearest normal features (exact, faiss)."""

    def __init__(self, n_neighbors: int = 1):
        self.n_neighbors = n_neighbors

    def fit(self, features: np.ndarray) -> KNNDistance:
        if self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be ≥ 1 (got {self.n_neighbors})")
        self.bank_ = np.ascontiguousarray(features, dtype=np.float32)
        if len(self.bank_) < self.n_neighbors:
            raise ValueError(f"kNN with k={self.n_neighbors} needs at least {self.n_neighbors} training features")
        self.index_ = faiss.IndexFlatL2(self.bank_.shape[1])
        self.index_.add(self.bank_)
        return self

    def score(self, features: np.ndarray) -> np.ndarray:
        if len(features) == 0:
            return np.zeros(0)
        queries = np.ascontiguousarray(features, dtype=np.float32)
        squared, _ = self.index_.search(queries, self.n_neighbors)
        return np.sqrt(np.maximum(squared, 0)).mean(axis=1).astype(np.float64)

    def state(self) -> dict[str, np.ndarray]:
        return {"bank": self.bank_}

    def load_state(self, arrays: Mapping[str, np.ndarray]) -> KNNDistance:
        return self.fit(arrays["bank"])


class PCAError:
    """Anomaly score = squared reconstruction error under a PCA of normal features keeping
    `pca_level` of their variance (FUVAS's score, as an estimator AI-VAD can cross-fit)."""

    def __init__(self, pca_level: float = 0.98):
        self.pca_level = pca_level

    def fit(self, features: np.ndarray) -> PCAError:
        features = np.asarray(features, dtype=np.float64)
        if len(features) < 2:
            raise ValueError("PCA needs at least two training features")
        self.pca_ = PCA(n_components=self.pca_level, svd_solver="full").fit(features)
        return self

    def score(self, features: np.ndarray) -> np.ndarray:
        if len(features) == 0:
            return np.zeros(0)
        return squared_errors(self.pca_, features).sum(axis=1)

    def state(self) -> dict[str, np.ndarray]:
        return pca_arrays(self.pca_)

    def load_state(self, arrays: Mapping[str, np.ndarray]) -> PCAError:
        self.pca_ = pca_from_arrays(arrays, len(np.asarray(arrays["components"])))
        return self


def crossfit_scores(
    features: np.ndarray,
    groups: np.ndarray,
    make: Callable[[], GMMDensity | KNNDistance | PCAError],
    n_folds: int = 10,
) -> np.ndarray:
    """Score every row with an estimator fitted on the other groups' rows only.

    With at most `n_folds` groups this is leave-one-video-out exactly; with more, group k-fold.
    """
    scores = np.empty(len(features), dtype=np.float64)
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError("held-out scoring needs features from at least two videos")
    for fit_rows, held_rows in GroupKFold(n_splits=min(n_folds, n_groups)).split(features, groups=groups):
        scores[held_rows] = make().fit(features[fit_rows]).score(features[held_rows])
    return scores
