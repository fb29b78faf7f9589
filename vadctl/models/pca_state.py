"""A fitted PCA as plain arrays and back (model files hold no pickles), and its per-row
reconstruction error: what FUVAS scores and what plovad's cells carry as a normality attribute."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.decomposition import PCA


def pca_arrays(pca: PCA, prefix: str = "") -> dict[str, np.ndarray]:
    """The arrays that rebuild `pca` (names prefixed with `prefix`)."""
    return {
        f"{prefix}components": pca.components_,
        f"{prefix}mean": pca.mean_,
        f"{prefix}explained_variance": pca.explained_variance_,
    }


def pca_from_arrays(arrays: Mapping[str, np.ndarray], n_components: int, prefix: str = "") -> PCA:
    """The PCA `pca_arrays` described, ready to transform (not whitened, as fitted here)."""
    pca = PCA(n_components=int(n_components))
    pca.components_ = np.asarray(arrays[f"{prefix}components"])
    pca.mean_ = np.asarray(arrays[f"{prefix}mean"])
    pca.explained_variance_ = np.asarray(arrays[f"{prefix}explained_variance"])
    pca.n_components_ = int(n_components)
    pca.n_features_in_ = pca.mean_.shape[0]
    pca.whiten = False
    return pca


def squared_errors(pca: PCA, flat: np.ndarray) -> np.ndarray:
    """(n, features) squared reconstruction error of each row of `flat`."""
    flat = np.asarray(flat, dtype=np.float64)
    return (flat - pca.inverse_transform(pca.transform(flat))) ** 2
