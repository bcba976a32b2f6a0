"""download_datasets.sh, offline: argument handling, --list, --dry-run, unpacking, skipping.

A fake ``curl`` on PATH serves archives built in tmp_path (looked up by the URL's file name)
and logs its arguments, so no test touches the network.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "download_datasets.sh"
FBRS = "https://github.com/saic-vul/fbrs_interactive_segmentation/releases/download/v1.0"

pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("unzip") is None or shutil.which("tar") is None,
    reason="needs bash, unzip and tar")

FAKE_CURL = """#!/usr/bin/env bash
printf '%s\\n' "$*" >> "$FAKE_CURL_LOG"
out=""; url=""
while (( $# )); do
  case "$1" in
    -o) out="$2"; shift 2 ;;
    -C|--retry|--retry-delay) shift 2 ;;
    -*) shift ;;
    *) url="$1"; shift ;;
  esac
done
src="$FAKE_CURL_FILES/${url##*/}"
[[ -f "$src" ]] || { echo "fake curl: no $src" >&2; exit 22; }
cp "$src" "$out"
"""


class Env:
    def __init__(self, tmp_path: Path):
        self.root = tmp_path / "datasets"
        self.files = tmp_path / "served"
        self.files.mkdir()
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        curl = self.bin / "curl"
        curl.write_text(FAKE_CURL)
        curl.chmod(0o755)
        self.log = tmp_path / "curl.log"
        self.log.touch()

    def run(self, *args: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, PATH=f"{self.bin}{os.pathsep}{os.environ['PATH']}",
                   FAKE_CURL_LOG=str(self.log), FAKE_CURL_FILES=str(self.files))
        return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True,
                              text=True, timeout=600)  # a safety net only

    def curl_calls(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line]

    def serve_zip(self, name: str, members: dict[str, bytes]) -> None:
        with zipfile.ZipFile(self.files / name, "w") as zf:
            for member, data in members.items():
                zf.writestr(member, data)

    def serve_tgz(self, name: str, members: dict[str, bytes]) -> None:
        src = self.files / f"{name}.src"
        for member, data in members.items():
            (src / member).parent.mkdir(parents=True, exist_ok=True)
            (src / member).write_bytes(data)
        with tarfile.open(self.files / name, "w:gz") as tf:
            for top in src.iterdir():
                tf.add(top, arcname=top.name)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


# ---------------------------------------------------------------------- arguments
def test_help_and_bad_arguments(env):
    res = env.run("--help")
    assert res.returncode == 0 and "Usage:" in res.stdout and "--dry-run" in res.stdout
    res = env.run("--bogus")
    assert res.returncode == 2 and "unknown argument" in res.stderr
    res = env.run("--only", "NoSuchSet", "--dry-run")
    assert res.returncode == 2 and "unknown dataset 'NoSuchSet'" in res.stderr
    res = env.run("--root")
    assert res.returncode == 2 and "--root needs a folder" in res.stderr
    assert env.curl_calls() == []


def test_list_names_targets_and_keys(env):
    res = env.run("--root", str(env.root), "--list")
    assert res.returncode == 0
    for name, target, key in [("GrabCut", "GrabCut", "GRABCUT_PATH"),
                              ("PascalVOC", "VOC2012", "PASCALVOC_PATH"),
                              ("SBD", "SBD", "SBD_PATH"), ("COCO", "MSCOCO", "COCO_PATH"),
                              ("LVIS", "LVIS", "LVIS_v1_PATH"),
                              ("LoveDA", "LoveDAMS", "IS_LoveDA_PATH"),
                              ("HQSeg44K", "HQSeg44K", "HQSeg44K_PATH")]:
        line = next(x for x in res.stdout.splitlines() if x.startswith(name + " "))
        assert f"{env.root}/{target}" in line and key in line
    assert "manual" in next(x for x in res.stdout.splitlines() if x.startswith("MAE "))
    assert not env.root.exists()


# ---------------------------------------------------------------------- dry run
def test_dry_run_eval_layout(env):
    res = env.run("--root", str(env.root), "--only", "eval", "--dry-run")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for name in ("GrabCut", "Berkeley", "DAVIS", "COCO_MVal"):
        assert f"download {FBRS}/{name}.zip" in out
        assert f"unpack -> {env.root}/{name}" in out
    assert "semantic_contours/benchmark.tgz" in out and f"{env.root}/SBD/dataset" in out
    assert "VOCtrainval_11-May-2012.tar" in out and f"unpack -> {env.root}/VOC2012" in out
    assert "MANUAL" in out and "LoveDAMS.zip" in out and "sam-hq-training" in out
    assert "images.cocodataset.org" not in out  # training sets not selected
    assert env.curl_calls() == [] and not env.root.exists()


def test_dry_run_training_layout(env):
    res = env.run("--root", str(env.root), "--only", "COCO,lvis,COCOLVIS", "--dry-run")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for url in ("http://images.cocodataset.org/zips/train2017.zip",
                "http://images.cocodataset.org/zips/val2017.zip",
                "http://images.cocodataset.org/annotations/panoptic_annotations_trainval2017.zip",
                "dl.fbaipublicfiles.com/LVIS/lvis_v1_train.json.zip",
                "ritm_interactive_segmentation/releases/download/v1.0/"
                "cocolvis_annotation.tar.gz"):
        assert url in out
    assert f"unpack -> {env.root}/MSCOCO/train" in out
    assert f"{env.root}/LVIS/train/lvis_train.json" in out
    assert f"link {env.root}/LVIS/train/images -> ../../MSCOCO/train" in out
    assert "MANUAL" not in out and not env.root.exists()


def test_manual_sets_only_print_instructions(env):
    res = env.run("--root", str(env.root), "--only", "LoveDA,HQSeg44K,MAE")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("MANUAL") == 3
    assert "drive.google.com" in res.stdout and "IS_LoveDA_PATH" in res.stdout
    assert "huggingface.co/sam-hq-team/sam-hq-training" in res.stdout
    assert "mae_pretrain_vit_base.pth" in res.stdout and "HQSeg44K_PATH" in res.stdout
    assert env.curl_calls() == []


# ---------------------------------------------------------------------- real (fake) runs
def test_download_unpack_and_skip_if_present(env):
    env.serve_zip("GrabCut.zip", {"GrabCut/data_GT/a.jpg": b"jpg",
                                  "GrabCut/boundary_GT/a.bmp": b"bmp",
                                  "__MACOSX/GrabCut/._a.jpg": b""})
    res = env.run("--root", str(env.root), "--only", "GrabCut")
    assert res.returncode == 0, res.stderr
    assert (env.root / "GrabCut" / "data_GT" / "a.jpg").read_bytes() == b"jpg"
    assert (env.root / "GrabCut" / "boundary_GT" / "a.bmp").is_file()
    assert not (env.root / "GrabCut" / "__MACOSX").exists()
    assert not (env.root / ".downloads" / "GrabCut.zip").exists()  # archive removed
    calls = env.curl_calls()
    assert len(calls) == 1 and "-C -" in calls[0] and f"{FBRS}/GrabCut.zip" in calls[0]

    res = env.run("--root", str(env.root), "--only", "GrabCut")
    assert res.returncode == 0 and "skip: already present" in res.stdout
    assert len(env.curl_calls()) == 1


def test_populated_target_is_never_downloaded(env):
    (env.root / "DAVIS" / "img").mkdir(parents=True)
    (env.root / "DAVIS" / "img" / "x.jpg").write_bytes(b"x")
    res = env.run("--root", str(env.root), "--only", "DAVIS")
    assert res.returncode == 0 and f"skip: already present in {env.root}/DAVIS" in res.stdout
    assert env.curl_calls() == []


def test_sbd_tgz_is_stripped_into_dataset_folder(env):
    env.serve_tgz("benchmark.tgz", {"benchmark_RELEASE/dataset/train.txt": b"a\n",
                                    "benchmark_RELEASE/dataset/img/a.jpg": b"j"})
    res = env.run("--root", str(env.root), "--only", "SBD", "--keep-archives")
    assert res.returncode == 0, res.stderr
    assert (env.root / "SBD" / "dataset" / "train.txt").read_text() == "a\n"
    assert (env.root / ".downloads" / "SBD.tgz").is_file()  # kept
    res = env.run("--root", str(env.root), "--only", "SBD")
    assert "skip: already present" in res.stdout


def test_corrupt_archive_fails_alone(env):
    (env.files / "Berkeley.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    env.serve_zip("COCO_MVal.zip", {"COCO_MVal/img/a.jpg": b"1", "COCO_MVal/gt/a.png": b"2"})
    res = env.run("--root", str(env.root), "--only", "Berkeley,COCO_MVal")
    assert res.returncode == 1
    assert "corrupt" in res.stderr and "failed: Berkeley" in res.stderr
    assert not (env.root / ".downloads" / "Berkeley.zip").exists()  # re-downloaded next time
    assert not (env.root / "Berkeley").exists()
    assert (env.root / "COCO_MVal" / "img" / "a.jpg").is_file()


def test_already_downloaded_archive_is_reused(env):
    (env.root / ".downloads").mkdir(parents=True)
    with zipfile.ZipFile(env.root / ".downloads" / "DAVIS.zip", "w") as zf:
        zf.writestr("DAVIS/img/a.jpg", b"1")
    res = env.run("--root", str(env.root), "--only", "DAVIS")
    assert res.returncode == 0, res.stderr
    assert "archive already downloaded" in res.stdout and env.curl_calls() == []
    assert (env.root / "DAVIS" / "img" / "a.jpg").is_file()


def test_failed_download_reports_and_continues(env):
    env.serve_zip("DAVIS.zip", {"DAVIS/img/a.jpg": b"1"})
    res = env.run("--root", str(env.root), "--only", "GrabCut,DAVIS")  # GrabCut not served
    assert res.returncode == 1 and "failed: GrabCut" in res.stderr
    assert (env.root / "DAVIS" / "img" / "a.jpg").is_file()


def _inner_zip(members: dict[str, bytes]) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    return buf.getvalue()


def test_training_sets_layout(env):
    for split in ("train", "val"):
        env.serve_zip(f"{split}2017.zip", {f"{split}2017/000000000001.jpg": b"img"})
        env.serve_zip(f"lvis_v1_{split}.json.zip", {f"lvis_v1_{split}.json": b"{}"})
    env.serve_zip("annotations_trainval2017.zip", {"annotations/instances_train2017.json": b"{}"})
    env.serve_zip("panoptic_annotations_trainval2017.zip", {
        **{f"annotations/panoptic_{s}2017.json": b"{}" for s in ("train", "val")},
        **{f"annotations/panoptic_{s}2017.zip":
           _inner_zip({f"panoptic_{s}2017/000000000001.png": b"png"}) for s in ("train", "val")},
    })
    env.serve_tgz("cocolvis_annotation.tar.gz", {"train/hannotation.pickle": b"p",
                                                 "train/masks/000000000001.pickle": b"m",
                                                 "val/hannotation.pickle": b"p"})
    res = env.run("--root", str(env.root), "--only", "train")
    assert res.returncode == 0, res.stdout + res.stderr
    coco, lvis = env.root / "MSCOCO", env.root / "LVIS"
    assert (coco / "train" / "000000000001.jpg").is_file()
    assert (coco / "val" / "000000000001.jpg").is_file()
    assert (coco / "annotations" / "panoptic_train.json").is_file()
    assert (coco / "annotations" / "panoptic_val" / "000000000001.png").is_file()
    assert (lvis / "train" / "lvis_train.json").is_file()
    assert (lvis / "val" / "lvis_val.json").is_file()
    assert (lvis / "train" / "hannotation.pickle").is_file()
    assert os.readlink(lvis / "train" / "images") == "../../MSCOCO/train"
    assert (lvis / "train" / "images" / "000000000001.jpg").read_bytes() == b"img"
    assert res.stdout.count("MANUAL") == 1  # MAE weights

    calls = len(env.curl_calls())
    res = env.run("--root", str(env.root), "--only", "COCO,LVIS,COCOLVIS")
    assert res.returncode == 0 and len(env.curl_calls()) == calls  # everything skipped


# ------------------------------------------------------------- download_weights.sh (offline)
WEIGHTS_SCRIPT = SCRIPT.with_name("download_weights.sh")
MAE = "https://dl.fbaipublicfiles.com/mae/pretrain"


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _fake_mae(path: Path, width: int, depth: int) -> Path:
    """A file with the layout and the shapes of an MAE pretraining checkpoint (tiny blocks)."""
    import torch

    sd = {"pos_embed": torch.zeros(1, 197, width),
          "patch_embed.proj.weight": torch.zeros(width, 3, 16, 16)}
    sd.update({f"blocks.{i}.norm1.weight": torch.zeros(1) for i in range(depth)})
    torch.save({"model": sd}, path)
    return path


def run_weights(env: Env, *args: str) -> subprocess.CompletedProcess:
    penv = dict(os.environ, PATH=f"{env.bin}{os.pathsep}{os.environ['PATH']}",
                FAKE_CURL_LOG=str(env.log), FAKE_CURL_FILES=str(env.files))
    return subprocess.run(["bash", str(WEIGHTS_SCRIPT), "--root", str(env.root), *args],
                          env=penv, capture_output=True, text=True, timeout=600)


def test_weights_list_and_dry_run_touch_nothing(env):
    res = run_weights(env, "--list")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    for name, how, target in [("MAE_BASE", "url", "weights/pretrained/mae_pretrain_vit_base.pth"),
                              ("MAE_HUGE", "url", "weights/pretrained/mae_pretrain_vit_huge.pth"),
                              ("MST", "manual", "weights/mst-3s-slim-448-base.pth"),
                              ("SIMPLECLICK_BASE", "manual",
                               "weights/pretrained/cocolvis_vit_base.pth")]:
        line = next(x for x in lines if x.startswith(name + " "))
        assert how in line.split() and target in line
    assert f"{MAE}/<file name>" in res.stdout

    res = run_weights(env, "--dry-run")
    assert res.returncode == 0, res.stderr
    for size in ("base", "large", "huge"):
        assert f"download {MAE}/mae_pretrain_vit_{size}.pth" in res.stdout
        assert f"-> {env.root}/weights/pretrained/mae_pretrain_vit_{size}.pth" in res.stdout
    # the manual steps: the page, the file to take, where it goes and how to check it
    assert res.stdout.count("MANUAL") == 4
    assert "sharepoint.com" in res.stdout and "github.com/hahamyt/mst" in res.stdout
    assert f"put it at {env.root}/weights/mst-3s-slim-448-base.pth" in res.stdout
    assert "drive.google.com/drive/folders/" in res.stdout
    assert "download cocolvis_vit_large.pth" in res.stdout
    assert "--check --only SIMPLECLICK_HUGE" in res.stdout
    assert env.curl_calls() == [] and not env.root.exists()

    res = run_weights(env, "--only", "nope")
    assert res.returncode == 2 and "unknown weight file 'NOPE'" in res.stderr


def test_weights_download_verifies_what_it_fetched(env, tmp_path):
    target = env.root / "weights" / "pretrained"
    _fake_mae(env.files / "mae_pretrain_vit_base.pth", 768, 12)
    _fake_mae(env.files / "mae_pretrain_vit_large.pth", 768, 12)  # a ViT-B under the L name
    marker = tmp_path / "code_ran"
    import torch

    torch.save({"model": _RunsCode(marker)}, env.files / "mae_pretrain_vit_huge.pth")
    res = run_weights(env, "--only", "mae")
    assert res.returncode == 1
    base = target / "mae_pretrain_vit_base.pth"
    assert base.is_file() and "ok: " in res.stdout
    from isegm.model.weights import sha256_of

    assert (target / "mae_pretrain_vit_base.pth.sha256").read_text().split() == \
        [sha256_of(base), "mae_pretrain_vit_base.pth"]
    # the wrong and the crafted file are refused and deleted, and nothing in them ran
    assert "width 768 and depth 12, not MAE ViT-L/16" in res.stderr
    assert not list(target.glob("mae_pretrain_vit_large*"))
    assert not list(target.glob("mae_pretrain_vit_huge*")) and not marker.exists()
    assert "failed: MAE_LARGE MAE_HUGE" in res.stderr

    # a later --check notices a file that changed since it was verified
    res = run_weights(env, "--check", "--only", "MAE_BASE,MST")
    assert res.returncode == 0 and "ok: " in res.stdout
    assert f"missing: {env.root}/weights/mst-3s-slim-448-base.pth" in res.stdout
    with open(base, "ab") as f:
        f.write(b"\0")
    res = run_weights(env, "--check", "--only", "MAE_BASE")
    assert res.returncode == 1 and "differs from the recorded" in res.stderr
