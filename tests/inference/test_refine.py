"""Graph-cut refinement (isegm/inference/refine.py): what it fixes, when it stays out of the
way, and that every path that shows masks (evaluation, lockstep, the annotation session) gets
the same refined maps."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from isegm.inference.clicker import Click, Clicker
from isegm.inference.evaluation import evaluate_dataset
from isegm.inference.lockstep import evaluate_dataset_batched
from isegm.inference.predictor import NoBRSPredictor
from isegm.inference.refine import (
    DEFAULT_RULE,
    GraphCutRefiner,
    RefinedPredictor,
    make_refiner,
    refine_fingerprint,
    rule_with,
)
from isegm.inference.transforms import ZoomIn
from isegm.model import build_model


def disc_scene(size: int = 160, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A red disc on a noisy blue-green background, and its mask."""
    rng = np.random.default_rng(seed)
    image = np.empty((size, size + 40, 3), np.uint8)
    image[...] = (40, 140, 120)
    ys, xs = np.mgrid[:size, :size + 40]
    mask = (ys - 80) ** 2 + (xs - 90) ** 2 <= 45 ** 2
    image[mask] = (200, 50, 40)
    noise = rng.integers(-20, 21, image.shape)
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8), mask


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_a_partial_network_map_grows_to_the_object():
    image, mask = disc_scene()
    ys, xs = np.mgrid[:mask.shape[0], :mask.shape[1]]
    partial = ((ys - 80) ** 2 + (xs - 90) ** 2 <= 20 ** 2).astype(np.float32) * 0.9 + 0.05
    refiner = GraphCutRefiner()
    refiner.set_image(image)
    out = refiner.refine(partial, [Click(True, (80, 90))])
    assert out.dtype == np.float32 and out.shape == mask.shape
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert iou(partial > 0.5, mask) < 0.3
    assert iou(out > 0.5, mask) > 0.95


def test_a_negative_click_and_a_second_blob_are_respected():
    image, mask = disc_scene()
    # a second red disc far away: same colour, not the clicked object
    ys, xs = np.mgrid[:mask.shape[0], :mask.shape[1]]
    other = (ys - 20) ** 2 + (xs - 185) ** 2 <= 12 ** 2
    image[other] = (200, 50, 40)
    prob = np.where(mask, 0.8, 0.1).astype(np.float32)
    refiner = GraphCutRefiner()
    refiner.set_image(image)
    out = refiner.refine(prob, [Click(True, (80, 90)), Click(False, (80, 60))]) > 0.5
    assert not out[other].any()  # not connected to a positive click
    assert not out[80, 59:62].any() and not out[79:82, 60].any()  # the negative click
    assert iou(out, mask) > 0.9


def test_large_images_are_cut_at_work_side_and_upsampled():
    image, mask = disc_scene(size=160)
    big = np.repeat(np.repeat(image, 4, 0), 4, 1)
    big_mask = np.repeat(np.repeat(mask, 4, 0), 4, 1)
    prob = np.where(big_mask, 0.7, 0.2).astype(np.float32)
    refiner = GraphCutRefiner()
    refiner.set_image(big)
    assert max(refiner.small_shape) == DEFAULT_RULE.work_side
    out = refiner.refine(prob, [Click(True, (320, 360))])
    assert out.shape == big_mask.shape and iou(out > 0.5, big_mask) > 0.95


def test_small_objects_keep_the_network_map_after_the_first_click():
    """Under 1 % of the image in the network's map at a later click: the zoomed-in network is
    left alone."""
    image, _ = disc_scene()
    ys, xs = np.mgrid[:image.shape[0], :image.shape[1]]
    prob = np.where((ys - 80) ** 2 + (xs - 90) ** 2 <= 3 ** 2, 0.9, 0.05).astype(np.float32)
    assert (prob > 0.5).mean() < DEFAULT_RULE.min_object_fraction
    refiner = GraphCutRefiner()
    refiner.set_image(image)
    clicks = [Click(True, (80, 90)), Click(False, (10, 10))]
    np.testing.assert_array_equal(refiner.refine(prob, clicks), prob)


@pytest.mark.parametrize("core", [5, 20])
def test_the_first_click_grows_the_network_core_to_the_object(core):
    """At the first click, the network's object of any size (here 0.25 % or 4 % of the image)
    starts the rule's colour mixtures, which claim the whole disc; with the second round's rule
    (``first_click = "disk"``) the 0.25 % core stays the network's."""
    image, mask = disc_scene()
    ys, xs = np.mgrid[:image.shape[0], :image.shape[1]]
    prob = np.where((ys - 80) ** 2 + (xs - 90) ** 2 <= core ** 2, 0.9, 0.05).astype(np.float32)
    refiner = GraphCutRefiner()
    refiner.set_image(image)
    out = refiner.refine(prob, [Click(True, (80, 90))])
    assert iou(out > 0.5, mask) > 0.95
    if core == 5:
        old = GraphCutRefiner(dataclasses.replace(DEFAULT_RULE, first_click="disk"))
        old.set_image(image)
        np.testing.assert_array_equal(old.refine(prob, [Click(True, (80, 90))]), prob)


def test_the_first_click_prior_only_for_large_first_maps():
    """At the first click, a network object of >= 3 % of the image gets the soft prior disk
    (0.6 within a quarter of the longest side); a smaller one, or a second click, does not.
    Without the colour term (and nearly no smoothing) the cut shows the prior itself."""
    image, _ = disc_scene()
    ys, xs = np.mgrid[:image.shape[0], :image.shape[1]]
    refiner = GraphCutRefiner(dataclasses.replace(DEFAULT_RULE, first_click="disk",
                                                  colour_weight=0.0,
                                                  smoothness=1.0))
    refiner.set_image(image)
    prior_disk = (ys - 80) ** 2 + (xs - 90) ** 2 <= (0.25 * 200) ** 2
    for radius, clicks, grows in ((25, 1, True), (12, 1, False), (25, 2, False)):
        part = (ys - 80) ** 2 + (xs - 90) ** 2 <= radius ** 2  # 6 % / 1.4 % of the image
        prob = np.where(part, 0.9, 0.02).astype(np.float32)
        out = refiner.refine(prob, [Click(True, (80, 90 + k)) for k in range(clicks)]) > 0.5
        if grows:
            assert iou(out, prior_disk) > 0.95
        else:
            assert iou(out, part) > 0.9


@pytest.mark.parametrize("case", ["no_positive", "one_pixel_wide", "nan_map"])
def test_maps_it_cannot_refine_are_returned_unchanged(case):
    image, mask = disc_scene()
    prob = np.where(mask, 0.8, 0.1).astype(np.float32)
    clicks = [Click(True, (80, 90))]
    if case == "no_positive":
        clicks = [Click(False, (10, 10))]
    elif case == "one_pixel_wide":
        image, prob, clicks = image[:, :1].copy(), prob[:, :1].copy(), [Click(True, (80, 0))]
    else:
        prob[0, 0] = np.nan
    refiner = GraphCutRefiner()
    refiner.set_image(image)
    out = refiner.refine(prob, clicks)
    np.testing.assert_array_equal(out, prob)


def test_a_grey_image_gives_a_finite_non_empty_mask():
    image, mask = disc_scene()
    image[mask] += 40  # the disc is brighter than the background in grey too
    grey = np.repeat(image.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    prob = np.where(mask, 0.8, 0.1).astype(np.float32)
    refiner = GraphCutRefiner()
    refiner.set_image(grey)
    out = refiner.refine(prob, [Click(True, (80, 90))])
    assert np.isfinite(out).all() and iou(out > 0.5, mask) > 0.9


def test_bad_modes_and_fingerprint():
    assert make_refiner("none") is None and isinstance(make_refiner("GrabCut"), GraphCutRefiner)
    with pytest.raises(ValueError, match="unknown refinement 'crf'"):
        make_refiner("crf")
    assert refine_fingerprint() == refine_fingerprint(DEFAULT_RULE)
    assert refine_fingerprint(dataclasses.replace(DEFAULT_RULE, smoothness=10.0)) != \
        refine_fingerprint()


class _Scenes:
    """Two disc scenes as an evaluation dataset."""

    def __init__(self) -> None:
        self.dataset_samples = [0, 1]

    def __len__(self) -> int:
        return 2

    def get_sample(self, index: int):
        from isegm.data.sample import DSample

        image, mask = disc_scene(seed=index)
        return DSample(image, mask.astype(np.int32), objects_ids=[1], sample_id=index)


def _predictor(refined: bool) -> object:
    torch.manual_seed(0)
    model = build_model("mst_tiny_224").eval()
    base = NoBRSPredictor(model, "cpu", zoom_in=ZoomIn(target_size=(224, 224)))
    # a random network's maps are small: refine them all the same
    rule = dataclasses.replace(DEFAULT_RULE, min_object_fraction=0.0)
    return RefinedPredictor(base, rule) if refined else base


def test_lockstep_and_one_at_a_time_give_the_same_refined_ious():
    kwargs = dict(max_iou_thr=0.99, max_clicks=3)
    single = [r.ious for r in evaluate_dataset(_Scenes(), _predictor(True), **kwargs)]
    batched = [r.ious for r in evaluate_dataset_batched(_Scenes(), _predictor(True),
                                                        batch_size=2, **kwargs)]
    for a, b in zip(single, batched):
        np.testing.assert_array_equal(a[0], b[0])
    plain = [r.ious for r in evaluate_dataset(_Scenes(), _predictor(False), **kwargs)]
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(single, plain))


def test_refined_predictor_refines_the_network_map():
    image, _ = disc_scene()
    predictor = _predictor(True)
    predictor.set_input_image(image)
    clicker = Clicker(init_clicks=[Click(True, (80, 90))])
    out = predictor.get_prediction(clicker)
    expected = GraphCutRefiner(predictor.rule)
    expected.set_image(image)
    np.testing.assert_array_equal(
        out, expected.refine(predictor.last_network_prob, clicker.get_clicks()))


def test_gmm_colour_model_separates_colours_and_is_deterministic():
    from isegm.inference.colour_model import fit_gmm

    rng = np.random.default_rng(0)
    red = rng.normal((200, 40, 40), 8, (500, 3))
    yellow = rng.normal((220, 210, 30), 8, (500, 3))
    blue = rng.normal((30, 60, 200), 8, (500, 3))
    fg = fit_gmm(np.vstack([red, yellow]).astype(np.float32), components=5)
    bg = fit_gmm(blue.astype(np.float32), components=5)
    probes = np.array([[200, 40, 40], [220, 210, 30], [30, 60, 200]], np.float32)
    odds = fg.log_likelihood(probes) - bg.log_likelihood(probes)
    assert odds[0] > 5 and odds[1] > 5 and odds[2] < -5  # both object colours, not the bg
    again = fit_gmm(np.vstack([red, yellow]).astype(np.float32), components=5)
    np.testing.assert_array_equal(fg.means, again.means)


@pytest.mark.parametrize("pixels", [np.full((50, 3), 128.0), np.zeros((1, 3)), np.zeros((0, 3))])
def test_gmm_of_flat_or_tiny_samples_is_finite(pixels):
    from isegm.inference.colour_model import fit_gmm

    gmm = fit_gmm(pixels.astype(np.float32), components=5)
    ll = gmm.log_likelihood(np.array([[128, 128, 128], [0, 255, 0]], np.float32))
    assert np.isfinite(ll).all() and ll[0] > ll[1]


@pytest.mark.parametrize("overrides", [dict(colour_model="hist", first_click="disk"),
                                       dict(engine="opencv"), dict(first_click="disk"),
                                       dict(first_click="opencv")])
def test_the_other_rule_options_also_grow_a_partial_map(overrides):
    """The validation script's alternatives (histograms, OpenCV's GrabCut) still work."""
    image, mask = disc_scene()
    ys, xs = np.mgrid[:mask.shape[0], :mask.shape[1]]
    partial = ((ys - 80) ** 2 + (xs - 90) ** 2 <= 20 ** 2).astype(np.float32) * 0.9 + 0.05
    refiner = GraphCutRefiner(dataclasses.replace(DEFAULT_RULE, **overrides))
    refiner.set_image(image)
    out = refiner.refine(partial, [Click(True, (80, 90))])
    assert iou(out > 0.5, mask) > 0.9


def test_unknown_rule_options_are_refused():
    with pytest.raises(ValueError, match="bad graph-cut refinement parameters"):
        dataclasses.replace(DEFAULT_RULE, colour_model="svm")


def test_rule_overrides_from_text():
    """The scripts' ``field=value,...`` variants: typed values, booleans, unknown fields."""
    rule = rule_with("first_click=opencv,neighbours=4,keep_connected=false,clip=0.3")
    assert (rule.first_click, rule.neighbours, rule.keep_connected, rule.clip) == \
        ("opencv", 4, False, 0.3)
    assert rule_with("") == DEFAULT_RULE
    with pytest.raises(ValueError, match="unknown refinement field 'nope'"):
        rule_with("nope=1")
    with pytest.raises(ValueError, match="bad graph-cut refinement parameters"):
        rule_with("neighbours=6")
