"""Photo scenes and the photo collector, on a tiny folder the tests make themselves."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from isegm.data import photos
from isegm.data.base import DatasetError
from isegm.data.datasets import EVAL_DATASETS, get_eval_dataset
from isegm.data.datasets.photo_render import _paste
from isegm.data.datasets.photo_scenes import (
    PhotoLibrary,
    PhotoScenesDataset,
    PhotoScenesEvalDataset,
    merged_region,
    split_files,
)
from isegm.data.points_sampler import MultiPointSampler
from isegm.data.transforms import train_augmentator

pytest.importorskip("skimage")


def _noise_photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth colourful image with edges (a stand-in for a photograph), BGR uint8."""
    grid = rng.uniform(0, 255, (6, 8, 3)).astype(np.float32)
    image = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(3):
        centre = (int(rng.integers(w)), int(rng.integers(h)))
        colour = rng.uniform(0, 255, 3).tolist()
        cv2.circle(image, centre, int(rng.integers(10, h // 3)), colour, -1)
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photos_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    (root / "scenes").mkdir()
    (root / "objects").mkdir()
    rng = np.random.default_rng(0)
    for k in range(6):
        cv2.imwrite(str(root / "scenes" / f"scene{k}.jpg"), _noise_photo(rng, 120, 160))
    for k in range(3):
        rgba = np.zeros((60, 50, 4), np.uint8)
        rgba[..., :3] = _noise_photo(rng, 60, 50)
        alpha = np.zeros((60, 50), np.uint8)
        cv2.ellipse(alpha, (25, 30), (20, 26), 0, 0, 360, 255, -1)
        rgba[..., 3] = alpha
        cv2.imwrite(str(root / "objects" / f"obj{k}.png"), rgba)
    return root


def test_split_is_disjoint_stable_and_covers_everything(photos_dir):
    files = sorted((photos_dir / "scenes").iterdir())
    train, val = split_files(files, "train"), split_files(files, "val")
    assert val and train and not set(train) & set(val)
    assert sorted(train + val) == files
    assert split_files(list(reversed(files)), "val") == val
    assert split_files(files[:1], "val") == [] and split_files(files[:1], "train") == files[:1]
    with pytest.raises(ValueError, match="unknown split"):
        split_files(files, "test")


def test_train_item_deterministic_per_seed_epoch_index(photos_dir):
    def make():
        return PhotoScenesDataset(photos_dir, num_samples=5, image_size=96, seed=3,
                                  augmentator=train_augmentator(96, scale_range=(0.8, 1.25)),
                                  points_sampler=MultiPointSampler(6), min_object_area=8)

    a, b = make(), make()
    first, again = a[(2, 4)], b[(2, 4)]
    for key in ("images", "points", "instances"):
        assert torch.equal(first[key], again[key])
    assert not torch.equal(first["images"], a[(3, 4)]["images"])  # new epoch: new scene
    assert not torch.equal(first["images"], a[(2, 3)]["images"])
    assert first["images"].shape == (3, 96, 96) and first["instances"].shape == (1, 96, 96)
    assert first["images"].dtype == torch.float32


def test_masks_binary_and_non_empty(photos_dir):
    ds = PhotoScenesDataset(photos_dir, num_samples=12, image_size=(80, 112), seed=1,
                            points_sampler=MultiPointSampler(6), min_object_area=8)
    for i in range(len(ds)):
        sample = ds.get_sample(i, ds.item_rng(i))
        assert sample.image.shape == (80, 112, 3) and sample.image.dtype == np.uint8
        assert len(sample) >= 1
        for k in range(len(sample)):
            mask = sample.get_object_mask(k)
            assert set(np.unique(mask)) <= {0, 1} and mask.sum() > 0
        item = ds[i]
        values = set(torch.unique(item["instances"]).tolist())
        assert values <= {0.0, 1.0, -1.0} and 1.0 in values


def test_paste_labels_only_the_visible_part():
    height, width = 40, 50
    canvas = np.zeros((height, width, 3), np.float32)
    labels = np.zeros((height, width), np.int32)
    rng = np.random.default_rng(0)
    square = np.ones((height, width), np.float32)
    _paste(rng, canvas, labels, 1, np.full((height, width, 3), 100, np.float32), square, True)
    disk = np.zeros((height, width), np.float32)
    cv2.circle(disk, (25, 20), 10, 1.0, -1)
    _paste(rng, canvas, labels, 2, np.full((height, width, 3), 200, np.float32), disk, True)
    assert np.array_equal(labels == 2, disk >= 0.5)
    assert np.array_equal(labels == 1, disk < 0.5)  # the occluded part is not object 1
    assert np.all(canvas[disk >= 0.5] == 200) and np.all(canvas[disk < 0.5] == 100)


def test_merged_region_follows_the_photograph_edge():
    image = np.zeros((96, 96, 3), np.uint8)
    image[:, :48] = (200, 40, 40)
    image[:, 48:] = (40, 40, 200)
    image = np.clip(image + np.random.default_rng(1).normal(0, 4, image.shape), 0, 255
                    ).astype(np.uint8)
    for seed in range(4):
        mask = merged_region(np.random.default_rng(seed), image, 0.3)
        assert mask.shape == (96, 96) and mask.any()
        left = mask[:, :48].sum() / mask.sum()
        assert left > 0.98 or left < 0.02  # one side only: the region stops at the edge


def test_eval_dataset_registered_deterministic_binary(photos_dir):
    assert EVAL_DATASETS["PhotoScenes"][1] == "PHOTOS_PATH"
    ds = get_eval_dataset("PhotoScenes", {"PHOTOS_PATH": str(photos_dir)}, num_samples=6,
                          image_size=96)
    twin = PhotoScenesEvalDataset(photos_dir, num_samples=6, image_size=96)
    for i in range(len(ds)):
        sample = ds.get_sample(i)
        mask = sample.gt_mask()
        assert set(np.unique(mask)) <= {0, 1} and mask.sum() > 0
        assert np.array_equal(sample.image, twin.get_sample(i).image)
    # validation photographs are disjoint from training ones
    assert not set(ds.library.scene_files) & set(PhotoLibrary(photos_dir, "train").scene_files)


def test_missing_or_empty_folder_is_one_line_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        PhotoScenesDataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no scene photographs"):
        PhotoScenesDataset(tmp_path)


def test_photo_cutout_filter_separates_drawings_from_photographs():
    rng = np.random.default_rng(0)
    drawing = np.zeros((80, 80, 4), np.uint8)
    cv2.circle(drawing, (40, 40), 35, (30, 200, 90, 255), -1)
    cv2.circle(drawing, (40, 40), 35, (0, 0, 0, 255), 2)
    photo = drawing.copy()
    photo[..., :3] = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
    assert not photos.is_photo_cutout(drawing)
    assert photos.is_photo_cutout(photo)
    assert not photos.is_photo_cutout(photo[..., :3])


def test_collect_is_idempotent_and_writes_licences(tmp_path, monkeypatch):
    calls = []
    rng = np.random.default_rng(2)

    def fake_fetch(source, work):
        calls.append(source.name)
        root = work / "unpacked"
        for member in source.files:
            (root / member).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / member), _noise_photo(rng, 1200, 1500))
        stamp = root / "usr/share/stamps/animals/fox.png"
        stamp.parent.mkdir(parents=True, exist_ok=True)
        rgba = np.dstack([_noise_photo(rng, 90, 90), np.full((90, 90), 255, np.uint8)])
        cv2.imwrite(str(stamp), rgba)
        return root, "1.0"

    monkeypatch.setattr(photos, "_fetch_archive", fake_fetch)
    sources = [
        photos.Source("pics", "pypi", "pics-pkg", {"a/one.png": ("CC0", "Someone")}),
        photos.Source("stamps", "deb", "stamps-pkg", objects_glob=("usr/share/stamps/*.png",),
                      objects_licence=("GPL-2", "Stamp makers")),
    ]
    counts = photos.collect(tmp_path, sources)
    assert counts == {"pics": 1, "stamps": 1} and calls == ["pics", "stamps"]
    scene = cv2.imread(str(tmp_path / "scenes" / "pics__one.jpg"))
    assert max(scene.shape[:2]) == photos.MAX_SIDE
    assert (tmp_path / "objects" / "stamps__fox.png").is_file()
    licences = (tmp_path / "LICENCES.md").read_text()
    assert "| scenes/pics__one.jpg | CC0 | Someone | pypi:pics-pkg (1.0) | a/one.png |" in licences
    assert "GPL-2" in licences
    assert photos.collect(tmp_path, sources) == counts and calls == ["pics", "stamps"]
    (tmp_path / "scenes" / "pics__one.jpg").unlink()  # a missing file: only its source again
    photos.collect(tmp_path, sources)
    assert calls == ["pics", "stamps", "pics"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert sorted(e["file"] for e in manifest) == ["objects/stamps__fox.png",
                                                   "scenes/pics__one.jpg"]
    assert photos.list_photos(tmp_path)[0] == [tmp_path / "scenes" / "pics__one.jpg"]


def test_cli_unknown_source_exits_2(tmp_path, capsys):
    assert photos.main(["collect", "--dest", str(tmp_path), "--sources", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown source(s) nope") and "\n" not in err


def _script(name: str) -> dict:
    """The hooks of the experiment script ``models/<name>.py``."""
    import runpy

    return runpy.run_path(str(Path(__file__).resolve().parents[2] / "models" / f"{name}.py"))


def _script_cfg(photos: Path | str) -> SimpleNamespace:
    return SimpleNamespace(PHOTOS_PATH=str(photos), seed=0, img_size=None)


def test_photo_scripts_share_one_budget_and_build_photo_datasets(photos_dir):
    mst, control = _script("mst_tiny_photos"), _script("plainvit_tiny_photos_ft")
    start = _script("plainvit_tiny_photos")
    cfg = _script_cfg(photos_dir)
    train_mst, loss_mst = mst["get_train_config"](cfg)
    train_ctl, loss_ctl = control["get_train_config"](cfg)
    assert train_mst == train_ctl and loss_ctl.token_weight == 0 < loss_mst.token_weight
    assert start["get_train_config"](cfg)[0].epochs > train_mst.epochs
    train, val = mst["get_datasets"](cfg)
    assert isinstance(train, PhotoScenesDataset) and isinstance(val, PhotoScenesDataset)
    assert not set(train.library.scene_files) & set(val.library.scene_files)
    item = train[0]
    assert item["images"].shape == (3, 224, 224) and item["instances"].shape == (1, 224, 224)
    with pytest.raises(DatasetError, match="PHOTOS_PATH"):
        mst["get_datasets"](_script_cfg(""))


def test_synthetic_fraction_mixes_procedural_scenes(photos_dir):
    """A ``synthetic_fraction`` share of the scenes comes from the procedural renderer: those
    equal ``render_scene`` fed the same generator, the others are photo scenes."""
    from isegm.data.datasets.synthetic import _object_scales, render_scene

    def procedural(ds, index):
        rng = ds.item_rng(index)
        rng.random()  # the draw that chose the renderer
        count = int(rng.integers(ds.objects_per_image[0], ds.objects_per_image[1] + 1))
        return render_scene(rng, 64, 64, _object_scales(rng, count, "all"))[0]

    kwargs = dict(num_samples=120, image_size=64, seed=5, min_object_area=8)
    every = PhotoScenesDataset(photos_dir, synthetic_fraction=1.0, **kwargs)
    for i in range(5):
        assert np.array_equal(every.get_sample(i, every.item_rng(i)).image, procedural(every, i))
    none = PhotoScenesDataset(photos_dir, synthetic_fraction=0.0, **kwargs)
    assert not any(np.array_equal(none.get_sample(i, none.item_rng(i)).image,
                                  procedural(none, i)) for i in range(20))
    mixed = PhotoScenesDataset(photos_dir, synthetic_fraction=0.25, **kwargs)
    share = np.mean([np.array_equal(mixed.get_sample(i, mixed.item_rng(i)).image,
                                    procedural(mixed, i)) for i in range(120)])
    assert 0.12 < share < 0.38
    with pytest.raises(ValueError, match="synthetic_fraction"):
        PhotoScenesDataset(photos_dir, synthetic_fraction=1.5, **kwargs)


def test_scale_probs_set_the_object_sizes_of_training_scenes(photos_dir):
    """``scale_probs`` decides how big the objects are: all-large scenes have larger objects
    than all-small ones (visible areas, so occlusion is included); bad mixes are refused."""
    from isegm.data.datasets.synthetic import scale_area_bounds

    def object_areas(probs):
        ds = PhotoScenesDataset(photos_dir, num_samples=8, image_size=96, seed=3,
                                scale_probs=probs, objects_per_image=(1, 1))
        return [int(np.count_nonzero(ds.get_sample(i).gt_mask())) for i in range(8)]

    small_high = scale_area_bounds("small", 96, 96)[1]
    large_low = scale_area_bounds("large", 96, 96)[0]
    # medians: a merged-superpixel region only roughly follows its target area
    assert np.median(object_areas((1.0, 0.0, 0.0))) < small_high
    assert np.median(object_areas((0.0, 0.0, 1.0))) > large_low
    for bad in [(0.5, 0.5), (0.5, 0.6, -0.1), (0.2, 0.2, 0.2)]:
        with pytest.raises(ValueError, match="scale_probs"):
            PhotoScenesDataset(photos_dir, scale_probs=bad)


@pytest.mark.parametrize("scale", ["SMALL", "MEDIUM", "LARGE"])
def test_photo_scene_scale_splits_hold_targets_of_that_scale(photos_dir, scale):
    from isegm.data.datasets.synthetic import object_scale

    ds = get_eval_dataset(f"PhotoScenes{scale}", {"PHOTOS_PATH": str(photos_dir)},
                          num_samples=4, image_size=96)
    assert ds.name == f"PhotoScenes{scale}"
    for i in range(len(ds)):
        area = int(ds.get_sample(i).gt_mask().sum())
        assert object_scale(area, 96, 96) == scale.lower()


def test_bigobject_stage_continues_each_model_with_the_same_budget(photos_dir):
    """Stage 3: MST and control share data and budget, each starts from its own stage-2
    weights, and the training scenes use the big-object mix (validation keeps the default)."""
    from isegm.engine.project_recipes import BIG_OBJECT_SCALE_PROBS

    mst = _script("mst_tiny_photos_bigobjects")
    control = _script("plainvit_tiny_photos_bigobjects")
    cfg = _script_cfg(photos_dir)
    (train_mst, loss_mst), (train_ctl, loss_ctl) = (mst["get_train_config"](cfg),
                                                    control["get_train_config"](cfg))
    assert train_mst == train_ctl and loss_ctl.token_weight == 0 < loss_mst.token_weight
    train, val = mst["get_datasets"](cfg)
    assert train.scale_probs == BIG_OBJECT_SCALE_PROBS
    assert val.scale_probs == PhotoScenesDataset(photos_dir).scale_probs != train.scale_probs


def test_gpu_448_scripts_share_data_and_budget_and_train_from_scratch(photos_dir):
    """The GPU run's MST and control (benchmarks/gpu_train_photos448.sh): same schedule, data
    and size, both from random weights (no config key), big-object scenes at 448."""
    from isegm.engine.project_recipes import BIG_OBJECT_SCALE_PROBS

    mst, control = _script("mst_small448_photos"), _script("plainvit_small448_photos")
    cfg = _script_cfg(photos_dir)
    (train_mst, loss_mst), (train_ctl, loss_ctl) = (mst["get_train_config"](cfg),
                                                    control["get_train_config"](cfg))
    assert train_mst == train_ctl and loss_ctl.token_weight == 0 < loss_mst.token_weight
    assert max(train_mst.milestones) < train_mst.epochs  # the learning-rate step is reached
    cfg.upsample, cfg.random_split = "x1", False
    model_mst, model_ctl = mst["init_model"](cfg), control["init_model"](cfg)
    assert (model_mst.cfg.arch, model_ctl.cfg.arch) == ("mst", "plainvit")
    assert model_mst.cfg.img_size == model_ctl.cfg.img_size == 448
    assert model_mst.cfg.embed_dim == model_ctl.cfg.embed_dim
    assert model_mst.cfg.depth == model_ctl.cfg.depth
    train, val = mst["get_datasets"](cfg)
    assert train.scale_probs == BIG_OBJECT_SCALE_PROBS
    assert train[0]["images"].shape == (3, 448, 448)
