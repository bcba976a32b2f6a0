"""Gaussian-mixture colour models, as GrabCut (Rother et al. 2004) keeps one for the object and
one for the background: the colour term of the graph-cut refinement (``refine.py``).

A mixture of a few full-covariance Gaussians describes the colours of a real photograph's
object (smooth shading, a few materials) with few parameters, so it generalises from a partial
mask to the rest of the object better than a sparse 3-D histogram. Fitting follows GrabCut:
k-means initialisation (OpenCV, seeded: deterministic), then a few rounds of assigning each
sample to its most likely component and re-estimating the components. It is fitted on a fixed
subsample of the pixels (``max_samples``), which keeps a refinement cheap on large images.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

__all__ = ["ColourGMM", "blur_histogram", "fit_gmm", "quadratic_features", "subsample"]

_RNG_SEED = 0
_VARIANCE_FLOOR = 4.0  # (colour levels)^2: keeps a flat region's covariance invertible


@dataclasses.dataclass(frozen=True)
class ColourGMM:
    """Mixture weights [K], means [K, 3] and the inverse Cholesky factors [K, 3, 3] and log
    normalisers [K] of the covariances (what the log-likelihood needs)."""

    weights: np.ndarray
    means: np.ndarray
    inv_chol: np.ndarray
    log_norm: np.ndarray

    def log_likelihood(self, pixels: np.ndarray) -> np.ndarray:
        """log p(colour) of each row of ``pixels`` [N, 3], as [N] float32."""
        return self.log_likelihood_of(quadratic_features(pixels))

    def log_likelihood_of(self, features: np.ndarray) -> np.ndarray:
        """log p(colour) from :func:`quadratic_features` [10, N] (one matrix product for all
        components: the refinement computes the features once per image)."""
        scores = self._component_scores(features)
        best = scores.max(0)
        return (best + np.log(np.exp(scores - best).sum(0))).astype(np.float32)

    def _component_scores(self, features: np.ndarray) -> np.ndarray:
        """[K, N] log(weight_k * N(pixel | component k)): the Mahalanobis distance expanded as
        a quadratic form of the pixel, so every component is a row of one matrix product."""
        rows = []
        for k in range(len(self.weights)):
            q = self.inv_chol[k].T.astype(np.float64) @ self.inv_chol[k].astype(np.float64)
            mu = self.means[k].astype(np.float64) - _CENTRE
            qmu = q @ mu
            maha = [q[0, 0], q[1, 1], q[2, 2], q[0, 1], q[0, 2], q[1, 2],
                    -2 * qmu[0], -2 * qmu[1], -2 * qmu[2], mu @ qmu]
            rows.append(-0.5 * np.asarray(maha))
            rows[-1][9] += np.log(self.weights[k]) + self.log_norm[k]
        return np.asarray(rows, np.float32) @ features


_CENTRE = 128.0


def quadratic_features(pixels: np.ndarray) -> np.ndarray:
    """[10, N] float32 monomials of the centred colours of ``pixels`` [N, 3]: c0², c1², c2²,
    2c0c1, 2c0c2, 2c1c2, c0, c1, c2, 1 (see :meth:`ColourGMM.log_likelihood_of`)."""
    c = np.asarray(pixels, np.float32).T - np.float32(_CENTRE)
    return np.stack([c[0] * c[0], c[1] * c[1], c[2] * c[2], 2 * c[0] * c[1],
                     2 * c[0] * c[2], 2 * c[1] * c[2], c[0], c[1], c[2],
                     np.ones_like(c[0])])


def subsample(count: int, max_samples: int) -> np.ndarray:
    """At most ``max_samples`` indices of ``range(count)``, evenly spread (deterministic)."""
    if count <= max_samples:
        return np.arange(count)
    return np.linspace(0, count - 1, max_samples).astype(np.int64)


def _from_assignment(pixels: np.ndarray, labels: np.ndarray, components: int) -> ColourGMM:
    weights, means, inv_chol, log_norm = [], [], [], []
    for k in range(components):
        members = pixels[labels == k]
        if len(members) < 2:
            continue
        mean = members.mean(0)
        cov = np.cov(members, rowvar=False) + np.eye(3) * _VARIANCE_FLOOR
        chol = np.linalg.cholesky(cov)
        weights.append(len(members) / len(pixels))
        means.append(mean)
        inv_chol.append(np.linalg.inv(chol))
        log_norm.append(-np.log(np.diag(chol)).sum() - 1.5 * np.log(2 * np.pi))
    if not weights:  # fewer than two samples: one broad component around their mean
        mean = pixels.mean(0) if len(pixels) else np.full(3, 127.5)
        chol = np.eye(3) * 64.0
        weights, means = [1.0], [mean]
        inv_chol, log_norm = [np.linalg.inv(chol)], [-np.log(np.diag(chol)).sum()
                                                    - 1.5 * np.log(2 * np.pi)]
    w = np.asarray(weights, np.float64)
    return ColourGMM(weights=(w / w.sum()).astype(np.float32),
                     means=np.asarray(means, np.float32),
                     inv_chol=np.asarray(inv_chol, np.float32),
                     log_norm=np.asarray(log_norm, np.float32))


def fit_gmm(pixels: np.ndarray, components: int = 5, rounds: int = 2) -> ColourGMM:
    """A ``components``-Gaussian mixture of ``pixels`` [N, 3] float32 (see the module
    docstring); ``rounds`` assignment/re-estimation rounds after k-means."""
    pixels = np.ascontiguousarray(pixels, np.float32)
    k = max(1, min(components, len(pixels)))
    if len(pixels) <= k:
        return _from_assignment(pixels, np.zeros(len(pixels), np.int64), 1)
    cv2.setRNGSeed(_RNG_SEED)
    criteria = (cv2.TERM_CRITERIA_MAX_ITER + cv2.TERM_CRITERIA_EPS, 10, 0.5)
    _, labels, _ = cv2.kmeans(pixels, k, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
    gmm = _from_assignment(pixels, labels.ravel(), k)
    features = quadratic_features(pixels)
    for _ in range(rounds):
        labels = gmm._component_scores(features).argmax(0)
        gmm = _from_assignment(pixels, labels, k)
    return gmm


def blur_histogram(hist: np.ndarray) -> np.ndarray:
    """A [1, 2, 1] / 4 blur along each colour axis (neighbouring bins share their counts)."""
    for axis in range(3):
        padded = np.pad(hist, [(1, 1) if a == axis else (0, 0) for a in range(3)],
                        mode="edge")
        lo = np.take(padded, range(0, hist.shape[axis]), axis=axis)
        mid = np.take(padded, range(1, hist.shape[axis] + 1), axis=axis)
        hi = np.take(padded, range(2, hist.shape[axis] + 2), axis=axis)
        hist = 0.25 * lo + 0.5 * mid + 0.25 * hi
    return hist
