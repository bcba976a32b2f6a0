"""Graph-cut refinement of a network's probability map (``refine = grabcut``).

A small click model often finds *where* the object is but not all of it, while a colour-model
graph cut (GrabCut, Rother et al. 2004) fills an object whose colours differ from the
background and snaps to its edges, but knows nothing of objects. Refining the network's map
with a graph cut (Xu et al., Deep Interactive Object Selection 2016; Deep GrabCut 2017)
combines the two. The rule (:data:`DEFAULT_RULE`), applied after every click to the map the
network made for that click:

* **the first click** (``first_click = "gmm"``, the clicks up to ``prior_clicks`` = 1), of an
  object of any size: GrabCut's energy on the whole image. The colour mixtures start from the
  network's map above 0.5 (foreground) and the rest (background), as OpenCV's GrabCut starts
  from a trimap, and the unaries are the colour term below plus only half the log-odds of the
  clipped network map (``first_net_weight`` = 0.5), with no region of interest. The first map of
  a small click model finds the object's core; the colour models grow it to the whole object and
  its edges. ``first_click = "opencv"`` runs OpenCV's ``cv2.grabCut`` from that trimap instead
  (as good on the validation scenes, about twice as slow); the second round's rule (``"disk"``)
  cut the soft unaries below with a disk prior: at least 0.6 (``prior_value``) within 0.25 x the
  longest side (``prior_radius``) of the click, when the network's object covered 3 % of the
  image (``prior_min_fraction``);
* **later clicks: small objects are left to the network**: when under 1 % of the image is above
  0.5 in the network's map (``min_object_fraction``), its map is returned as it is. The network
  zooms in on such objects (ZoomIn) and sees them sharper than the cut does;
* the image is processed at a longest side of 400 px (``work_side``; area downscaling, smaller
  images as they are); the cut is upsampled bilinearly;
* **prior** (later clicks): the network's probability, clipped to [0.2, 0.8] (``clip``: the
  colour model can overrule the network where it is unsure or wrong);
* **colour model** (``colour_model = "gmm"``, :mod:`isegm.inference.colour_model`): GrabCut's
  two Gaussian mixtures of 5 full-covariance components (``gmm_components``), one for the
  pixels above 0.5 in the prior and one for the rest of the image, each fitted on at most 4000
  evenly spread pixels (``gmm_samples``) by seeded k-means and two assignment rounds; then
  re-fitted to the cut: ``iterations`` = 3 cuts, as GrabCut re-estimates its GMMs. (The earlier
  rule, ``colour_model = "hist"``: weighted 16-bin-per-channel histograms, ``bins``);
* **unaries**: ``net_weight * logit(prior) + colour_weight * log(P(colour|fg) / P(colour|bg))``
  with ``net_weight`` = 1 and ``colour_weight`` = 0.5; the clicked pixels (``click_radius`` =
  1 px) are hard constraints: a wider disk swallows thin and small objects;
* **pairwise**: GrabCut's contrast-sensitive Potts term on the 8-neighbourhood
  (``neighbours``; diagonal edges divided by sqrt 2), ``25 * exp(-beta |c_i - c_j|^2)``
  (``smoothness``) with ``beta`` from the image's mean squared neighbour difference;
  PyMaxflow's minimum cut (Boykov-Kolmogorov; the iterations of a click cut one graph and reuse
  its search trees);
* after the first click the cut runs in the box of the likely object (prior > 0.2,
  ``roi_threshold``, and the positive clicks) grown by a quarter of its size (``roi_margin``);
  outside it is background;
* **connectivity**: only the connected parts of the cut that contain a positive click are
  kept (a same-coloured patch elsewhere is not the object).

Options kept for the validation script, off in the rule: ``engine = "opencv"`` (OpenCV's
``cv2.grabCut`` from the trimap prior > 0.5 at every click), ``first_click = "opencv"``,
``"disk"`` or ``"same"``, ``prior_clip`` (another clip at a ``"disk"`` first click) and
``prior_colour_weight`` (another colour weight at the first click).

The refinement is a pure function of (image, network map, clicks): it keeps no state between
clicks, so undo, reset and lockstep evaluation need nothing from it, and the network gets its
own previous map (feeding the refined map back to it was worse on the validation scenes). With
no positive click, an image under 2 px on a side, or a network map with a non-finite value, the
network's map is returned unchanged (and the reason is logged once per image).

How the rule was chosen: ``benchmarks/refine_validation.py`` on photo scenes composed from the
*training* photographs, never on GrabCut, the held-out photographs or the synthetic benchmarks
(those were measured once, afterwards). Third round (issue 21): 30 scenes per scale, seeds 101
and 202; NoC@90 small / medium / large, their mean, and mIoU@1 of the three scales:

=================================================  ======================  ==================
rule                                               seed 101: S / M / L     mIoU@1 S / M / L
=================================================  ======================  ==================
the network alone                                  10.50 / 7.23 / 7.20     24.9 / 59.2 / 40.6
second round: ``first_click = "disk"``, 4-nbhd     10.23 / 4.47 / 3.77     27.9 / 63.5 / 65.2
OpenCV first click, objects >= 3 % only            10.33 / 4.30 / 3.60     33.5 / 73.4 / 64.1
OpenCV first click, any size (``"opencv"``)         8.97 / 4.17 / 3.60     52.0 / 76.8 / 68.1
... and OpenCV at the second click too              9.07 / 4.43 / 3.67     52.0 / 76.8 / 68.1
... and 5 iterations (cuts)                         9.13 / 4.07 / 3.70     52.2 / 75.7 / 70.8
... at a first-click side of 256 px (for speed)    10.27 / 4.33 / 3.40     47.0 / 74.9 / 66.8
``"gmm"``, network weight 0 at the first click      9.47 / 4.57 / 3.63     45.2 / 70.7 / 69.1
``"gmm"``, network weight 0.5, 4-neighbourhood      9.40 / 4.50 / 3.53     44.9 / 75.1 / 67.3
**``"gmm"``, weight 0.5, 8-neighbourhood (rule)**   9.00 / 4.10 / 3.47     53.0 / 77.8 / 65.6
``"gmm"``, weight 1, 4-neighbourhood                9.67 / 4.23 / 3.63     43.6 / 76.9 / 64.2
=================================================  ======================  ==================

Mean NoC@90 over the three scales, seeds 101 / 202: the network 8.31 / 8.11, the second round's
rule 6.16 / 5.50, ``"opencv"`` 5.58 / 4.93, **the rule 5.52 / 4.92** (seed 202: 8.33 / 3.97 /
2.47, mIoU@1 47.2 / 80.6 / 76.8 %); ``"gmm"`` with weight 0.5 on the 4-neighbourhood 5.81 /
4.89. ``"opencv"`` and the rule tie on quality; the rule's first click takes about half the
time (BENCHMARKS.md), which decided it. At the first click alone (seed 101, 30 scenes per
scale) classical GrabCut's disk prior wins on large objects (78.7 % mIoU@1) but fails small and
medium ones (4.7 / 35.6 %), and neither a classical-GrabCut region instead of the disk nor a
disk scaled to the network's object (1.5 or 2 x its radius) beat OpenCV from the trimap. The
second round's table is in README "Graph-cut refinement", with a fourth round that changed
nothing (a background mixture fitted outside a disk around the click, a lower seed threshold,
and a per-image choice of classical GrabCut's first mask: each helps large objects and costs
small ones, or finds no cue).
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from isegm.inference.clicker import Click
from isegm.inference.colour_model import blur_histogram, fit_gmm, quadratic_features, subsample
from isegm.inference.grabcut_baseline import as_uint8_rgb, force_clicks
from isegm.inference.graph_cut import (
    GridCut,
    click_distances,
    click_labels,
    edge_weights,
    parts_with_positive_clicks,
)

__all__ = ["REFINE_CHOICES", "DEFAULT_RULE", "add_refine_argument", "GraphCutRule",
           "GraphCutRefiner", "RefinedPredictor", "make_refiner", "refine_fingerprint",
           "rule_with"]

logger = logging.getLogger(__name__)

#: Values of the ``--refine`` options and the ``refine`` API field.
REFINE_CHOICES = ("none", "grabcut")


@dataclasses.dataclass(frozen=True)
class GraphCutRule:
    """Parameters of the refinement (see the module docstring); the defaults are the rule
    chosen on the validation scenes."""

    work_side: int = 400
    clip: float = 0.2
    net_weight: float = 1.0
    colour_weight: float = 0.5
    smoothness: float = 25.0
    iterations: int = 3
    bins: int = 16
    click_radius: int = 1
    prior_radius: float = 0.25
    prior_value: float = 0.6
    prior_clicks: int = 1
    prior_min_fraction: float = 0.03
    min_object_fraction: float = 0.01
    keep_connected: bool = True
    neighbours: int = 8
    roi_threshold: float = 0.2
    roi_margin: float = 0.25
    colour_model: str = "gmm"
    gmm_components: int = 5
    gmm_samples: int = 4000
    engine: str = "maxflow"
    first_click: str = "gmm"
    first_net_weight: float = 0.5
    prior_clip: float = 0.0
    prior_colour_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.work_side < 16 or self.iterations < 1 or not 2 <= self.bins <= 64 or \
                not 0 < self.clip < 0.5 or self.click_radius < 1 or self.smoothness < 0 or \
                self.neighbours not in (4, 8) or self.roi_margin < 0 or \
                self.colour_model not in ("hist", "gmm") or self.gmm_components < 1 or \
                self.gmm_samples < 10 or self.engine not in ("maxflow", "opencv") or \
                self.first_click not in ("opencv", "gmm", "disk", "same"):
            raise ValueError(f"bad graph-cut refinement parameters: {self}")


DEFAULT_RULE = GraphCutRule()


def rule_with(overrides: str, base: GraphCutRule = DEFAULT_RULE) -> GraphCutRule:
    """``base`` with the fields of ``"field=value,..."`` changed (the variants of the
    validation and speed scripts).

    Raises:
        ValueError: an unknown field or a bad value.
    """
    changes: dict[str, Any] = {}
    for item in filter(None, overrides.split(",")):
        key, _, value = item.partition("=")
        if key not in GraphCutRule.__dataclass_fields__:
            raise ValueError(f"unknown refinement field {key!r}")
        default = getattr(base, key)
        changes[key] = value.lower() in ("1", "true", "yes") if isinstance(default, bool) \
            else type(default)(value)
    return dataclasses.replace(base, **changes)


def refine_fingerprint(rule: GraphCutRule = DEFAULT_RULE) -> str:
    """A short hash of the rule: evaluation run keys change when the rule does."""
    text = "graphcut-refine-v3:" + repr(dataclasses.astuple(rule))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class GraphCutRefiner:
    """The refinement of one image at a time: :meth:`set_image` once (colour bins and edge
    weights are computed there), then :meth:`refine` per click."""

    def __init__(self, rule: GraphCutRule = DEFAULT_RULE) -> None:
        self.rule = rule
        self._image_shape: tuple[int, int] | None = None
        self._skip_reason: str | None = None

    def set_image(self, image: np.ndarray) -> None:
        """Sets the H×W×3 uint8 RGB image of the following :meth:`refine` calls."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"refinement needs an HxWx3 image, got shape {image.shape}")
        height, width = image.shape[:2]
        self._image_shape = (height, width)
        self._warned = False
        self._skip_reason = None
        if min(height, width) < 2:
            self._skip_reason = f"the image is {width}x{height} pixels"
            return
        scale = min(1.0, self.rule.work_side / max(height, width))
        self.scale = scale
        if scale < 1:
            size = (max(2, round(width * scale)), max(2, round(height * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        else:
            small = np.ascontiguousarray(image)
        self.small_shape = small.shape[:2]
        self._small = small
        self._pixels = small.reshape(-1, 3).astype(np.float32)
        if self.rule.colour_model == "gmm":  # the colour model's per-image part
            self._features = quadratic_features(self._pixels).reshape(10, *small.shape[:2])
        else:
            q = (small.astype(np.int32) * self.rule.bins) >> 8
            self._bin = (q[..., 0] * self.rule.bins + q[..., 1]) * self.rule.bins + q[..., 2]
        self._edges = edge_weights(small.astype(np.float32), self.rule.smoothness)

    def refine(self, prob: np.ndarray, clicks: Sequence[Click]) -> np.ndarray:
        """The refined H×W float32 map in [0, 1] for the network map ``prob`` and the clicks
        (coords (y, x) in image pixels) it was made for."""
        if self._image_shape is None:
            raise RuntimeError("GraphCutRefiner: call set_image before refine")
        prob = np.asarray(prob, dtype=np.float32)
        if prob.shape != self._image_shape:
            raise ValueError(f"map of shape {prob.shape} for an image of {self._image_shape}")
        reason = self._skip_reason
        if reason is None and not any(c.is_positive for c in clicks):
            reason = "no positive click yet"
        if reason is None and not np.isfinite(prob).all():
            reason = "the network's map has non-finite values"
        if reason is not None:
            if not self._warned:
                logger.info("graph-cut refinement skipped: %s (the network's map is used)",
                            reason)
                self._warned = True
            return prob
        rule = self.rule
        height, width = self._image_shape
        sh, sw = self.small_shape
        small_prob = prob if self.scale == 1 else \
            cv2.resize(prob, (sw, sh), interpolation=cv2.INTER_AREA)
        small_clicks = [(c.coords[0] * self.scale, c.coords[1] * self.scale, c.is_positive)
                        for c in clicks]
        fraction = float((small_prob > 0.5).mean())
        first = self._first_click_rule(fraction, small_clicks)
        if first is None and fraction < rule.min_object_fraction:
            return prob  # a small object: the network's zoomed-in map is the better one
        clip = rule.prior_clip if first == "disk" and rule.prior_clip > 0 else rule.clip
        prior = np.clip(small_prob, clip, 1 - clip)
        if first == "disk":
            prior = self._prior(prior, small_clicks)
        colour_weight = rule.prior_colour_weight if first and rule.prior_colour_weight > 0 \
            else rule.colour_weight
        hard = click_labels(small_clicks, (sh, sw), rule.click_radius)
        if rule.engine == "opencv" or first == "opencv":
            segment = self._opencv_grabcut(prior, hard)
        elif first == "gmm":  # GrabCut's energy on this module's graph, the whole image
            segment = self._graph_cut(prior, hard, colour_weight, rule.first_net_weight,
                                      (slice(0, sh), slice(0, sw)))
        else:
            segment = self._graph_cut(prior, hard, colour_weight)
        if rule.keep_connected:
            segment = parts_with_positive_clicks(segment, small_clicks)
        out = segment.astype(np.float32)
        if self.scale < 1:
            out = cv2.resize(out, (width, height), interpolation=cv2.INTER_LINEAR)
        force_clicks(out, list(clicks), max(1, round(rule.click_radius / self.scale)))
        return out

    # ------------------------------------------------------------------ parts of the rule
    def _graph_cut(self, prior: np.ndarray, hard: np.ndarray, colour_weight: float,
                   net_weight: float | None = None,
                   roi: tuple[slice, slice] | None = None) -> np.ndarray:
        """The iterated minimum cut of the network prior and the colour models."""
        rule = self.rule
        net_weight = rule.net_weight if net_weight is None else net_weight
        net_logit = net_weight * np.log(prior / (1 - prior))
        roi = self._roi(prior, hard) if roi is None else roi
        edges = [e[roi] for e in self._edges[: rule.neighbours // 2]]
        segment = np.zeros(prior.shape, bool)
        weights_fg = prior
        graph = GridCut(net_logit[roi].shape, edges)  # one graph, cut once per iteration
        for _ in range(rule.iterations):
            if rule.colour_model == "gmm":
                colour = self._gmm_log_odds(weights_fg > 0.5, roi)
            else:
                colour = self._colour_log_odds(weights_fg, 1 - weights_fg)[roi]
            segment[roi] = graph.cut(net_logit[roi] + colour_weight * colour, hard[roi])
            weights_fg = segment.astype(np.float32)
        return segment

    def _opencv_grabcut(self, prior: np.ndarray, hard: np.ndarray) -> np.ndarray:
        """OpenCV's GrabCut from a trimap: prior > 0.5 probable foreground, the rest probable
        background, the click disks definite (its GMMs and graph; no soft unaries)."""
        mask = np.where(prior > 0.5, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
        mask[hard == 1], mask[hard == 0] = cv2.GC_FGD, cv2.GC_BGD
        if not np.isin(mask, (cv2.GC_BGD, cv2.GC_PR_BGD)).any() or \
                not np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).any():
            return prior > 0.5  # GrabCut needs samples of both sides
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)
        cv2.grabCut(np.ascontiguousarray(self._small[..., ::-1]), mask, None, bgd, fgd,
                    self.rule.iterations, cv2.GC_INIT_WITH_MASK)
        return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)

    def _gmm_log_odds(self, foreground: np.ndarray, roi: tuple[slice, slice]) -> np.ndarray:
        """log P(colour | fg GMM) - log P(colour | bg GMM) in the box ``roi``; the mixtures are
        fitted on a subsample of the whole image's pixels on each side of ``foreground``."""
        flat = foreground.ravel()
        models = []
        for side in (flat, ~flat):
            idx = np.flatnonzero(side)
            idx = idx[subsample(len(idx), self.rule.gmm_samples)]
            models.append(fit_gmm(self._pixels[idx], self.rule.gmm_components))
        features = self._features[(slice(None), *roi)]
        shape = features.shape[1:]
        features = features.reshape(10, -1)
        return (models[0].log_likelihood_of(features) -
                models[1].log_likelihood_of(features)).reshape(shape)

    def _first_click_rule(self, fraction: float,
                          clicks: list[tuple[float, float, bool]]) -> str | None:
        """``rule.first_click`` (``"gmm"``, ``"opencv"`` or ``"disk"``) where the first-click
        rule applies to these clicks, else None."""
        rule = self.rule
        if len(clicks) > rule.prior_clicks or rule.first_click == "same":
            return None
        if rule.first_click == "disk" and (rule.prior_radius <= 0 or
                                           fraction < rule.prior_min_fraction):
            return None
        return rule.first_click

    def _prior(self, prior: np.ndarray, clicks: list[tuple[float, float, bool]]) -> np.ndarray:
        rule = self.rule
        to_pos, to_neg = click_distances(clicks, prior.shape)
        near = (to_pos <= rule.prior_radius * max(prior.shape)) & (to_pos < to_neg)
        return np.where(near, np.maximum(prior, rule.prior_value), prior)

    def _roi(self, prior: np.ndarray, hard: np.ndarray) -> tuple[slice, slice]:
        """The box the cut runs in: the likely object (prior > ``roi_threshold``) and the
        positive clicks, grown by ``roi_margin`` x its size; everything outside is background.
        Only cost: a same-coloured region far from everything the network and the clicks
        point at cannot join the object, which the connectivity rule forbids anyway."""
        ys, xs = np.nonzero((prior > self.rule.roi_threshold) | (hard == 1))
        sh, sw = prior.shape
        if len(ys) == 0:
            return slice(0, sh), slice(0, sw)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        my = int(self.rule.roi_margin * (y1 - y0)) + 2 * self.rule.click_radius
        mx = int(self.rule.roi_margin * (x1 - x0)) + 2 * self.rule.click_radius
        return slice(max(0, y0 - my), min(sh, y1 + my)), slice(max(0, x0 - mx), min(sw, x1 + mx))

    def _colour_log_odds(self, weights_fg: np.ndarray, weights_bg: np.ndarray) -> np.ndarray:
        """log P(colour | fg) - log P(colour | bg) per pixel, from weighted 3-D histograms."""
        n = self.rule.bins ** 3
        flat = self._bin.ravel()
        hists = []
        for weights in (weights_fg, weights_bg):
            hist = np.bincount(flat, weights=weights.ravel(), minlength=n).astype(np.float32)
            hist = hist.reshape((self.rule.bins,) * 3)
            hist = blur_histogram(hist)
            hists.append((hist / max(float(hist.sum()), 1e-6)).ravel() + 1e-4 / n)
        log_ratio = np.log(hists[0]) - np.log(hists[1])
        return log_ratio[self._bin].astype(np.float32)


class RefinedPredictor:
    """A network predictor (:class:`~isegm.inference.predictor.NoBRSPredictor`) whose maps go
    through :class:`GraphCutRefiner`. It has the wrapped predictor's interface
    (``set_input_image``, ``get_prediction``, ``prediction_steps``, ``clone``, states), so the
    evaluation, its lockstep driver and the annotation session use it unchanged."""

    def __init__(self, base: Any, rule: GraphCutRule = DEFAULT_RULE) -> None:
        self.base = base
        self.rule = rule
        self.refiner = GraphCutRefiner(rule)
        self.last_network_prob: np.ndarray | None = None

    def __getattr__(self, name: str) -> Any:  # zoom_in, forward_runner, net, ...
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def clone(self) -> RefinedPredictor:
        return RefinedPredictor(self.base.clone(), self.rule)

    def set_input_image(self, image: Any) -> None:
        self.base.set_input_image(image)
        self.refiner.set_image(as_uint8_rgb(image))

    def get_prediction(self, clicker: Any, prev_mask: Any = None) -> np.ndarray:
        prob = self.base.get_prediction(clicker, prev_mask)
        return self._refine(prob, clicker)

    def prediction_steps(self, clicker: Any, prev_mask: Any = None):  # noqa: ANN201
        prob = yield from self.base.prediction_steps(clicker, prev_mask)
        return self._refine(prob, clicker)

    def _refine(self, prob: np.ndarray, clicker: Any) -> np.ndarray:
        self.last_network_prob = prob
        return self.refiner.refine(prob, list(clicker.get_clicks()))

    def get_states(self) -> dict[str, Any]:
        return self.base.get_states()

    def set_states(self, states: dict[str, Any]) -> None:
        self.base.set_states(states)


def add_refine_argument(parser: Any) -> None:
    """``--refine auto|grabcut|none`` (the same option for ``isegm.predict``, ``demo.py`` and
    ``isegm.serve``)."""
    parser.add_argument(
        "--refine",
        choices=("auto", *REFINE_CHOICES),
        default="auto",
        help="graph-cut refinement of the network's masks (isegm/inference/refine.py); auto "
             "(default): on for the built-in default checkpoint, off for any other",
    )


def make_refiner(mode: str | None, rule: GraphCutRule = DEFAULT_RULE) -> GraphCutRefiner | None:
    """The refiner of a ``refine`` option value (None for ``none``).

    Raises:
        ValueError: an unknown mode (the message lists the choices).
    """
    mode = "none" if mode is None else str(mode).strip().lower()
    if mode not in REFINE_CHOICES:
        raise ValueError(f"unknown refinement {mode!r}; choose one of {', '.join(REFINE_CHOICES)}")
    return None if mode == "none" else GraphCutRefiner(rule)
