"""The annotate -> fine-tune -> serve loop, end to end: images annotated through the server's JSON
API, its ``coco.json`` exports fine-tune the built-in default a few steps with
``models/finetune.py``, and the new checkpoint opens in ``isegm.predict`` and in the server.
Bad training files stop the command with one line each, before anything is created."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from isegm.data.datasets.synthetic import SyntheticEvalDataset
from isegm.engine.launch import main
from isegm.inference.utils import DEFAULT_MODEL_FILE
from isegm.predict import Predictor, load_model
from isegm.serve import ServeConfig, Service, create_app

REPO = Path(__file__).resolve().parents[2]
SCRIPT = str(REPO / "models" / "finetune.py")


def _png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def _inner_point(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of the pixel farthest from the mask's border: where a person would click."""
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(x), float(y)


def _client(model) -> tuple[TestClient, Service]:
    service = Service(model, "cpu", ServeConfig(limit_longest_size=256))
    return TestClient(create_app(service), base_url="http://127.0.0.1"), service


def _annotate(client: TestClient, image: np.ndarray, name: str, gt: np.ndarray) -> dict:
    """One session: a click inside the object, finish it, export coco.json."""
    r = client.post("/api/sessions", files={"image": (name, _png(image), "image/png")})
    assert r.status_code == 201, r.text
    sid = r.json()["session_id"]
    x, y = _inner_point(gt)
    r = client.post(f"/api/sessions/{sid}/clicks", json={"x": x, "y": y, "positive": True})
    assert r.status_code == 200 and r.json()["area"] > 0, r.text
    assert client.post(f"/api/sessions/{sid}/finish").json()["objects"] == 1
    doc = client.get(f"/api/sessions/{sid}/coco.json").json()
    assert doc["images"][0]["file_name"] == name and len(doc["annotations"]) == 1
    return doc


def test_annotate_export_finetune_then_predict_and_serve(tmp_path, capsys):
    scenes = SyntheticEvalDataset(num_samples=3, image_size=160, seed=5, scale="large")
    default = load_model(None, "cpu")
    client, service = _client(default)
    specs = []
    try:
        for i in range(len(scenes)):
            s = scenes.get_sample(i)
            name = f"scene{i}.png"
            doc = _annotate(client, s.image, name, s.gt_mask(0) == 1)
            folder = tmp_path / ("train" if i < 2 else "val")  # the exports, with the images
            folder.mkdir(exist_ok=True)
            cv2.imwrite(str(folder / name), cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR))
            (folder / f"scene{i}.json").write_text(json.dumps(doc))
            specs.append(f"COCO:{folder / f'scene{i}.json'}")
    finally:
        service.close()

    exps = tmp_path / "exps"
    argv = [SCRIPT, "--cpu", "--workers", "0", "--epochs", "1", "--max-steps-per-epoch", "2",
            "--batch-size", "2", "--val-objects", "1", "--exps-path", str(exps),
            "--exp-name", "loop", "--train-data", f"COCO:{tmp_path / 'train'}",
            "--val-data", specs[2]]  # a COCO: folder reads every export in it
    assert main(argv) == 0, capsys.readouterr().err
    ckpts = exps / "finetune" / "000_loop" / "checkpoints"
    assert (ckpts / "best.pth").is_file() and (ckpts / "last.pth").is_file()

    tuned = load_model(ckpts / "best.pth", "cpu")
    assert tuned.cfg.to_dict() == default.cfg.to_dict()  # the architecture of --weights ...
    changed = [k for k, v in tuned.state_dict().items()
               if v.is_floating_point() and not torch.equal(v, default.state_dict()[k])]
    assert changed  # ... with trained weights

    s = scenes.get_sample(0)
    x, y = _inner_point(s.gt_mask(0) == 1)
    predictor = Predictor(tuned, device="cpu")
    predictor.set_image(s.image)
    mask, _ = predictor.predict([(x, y, True)])
    assert mask.shape == s.image.shape[:2]

    client, service = _client(tuned)
    try:
        r = client.post("/api/sessions", files={"image": ("a.png", _png(s.image), "image/png")})
        sid = r.json()["session_id"]
        r = client.post(f"/api/sessions/{sid}/clicks", json={"x": x, "y": y, "positive": True})
        assert r.status_code == 200, r.text
        assert r.json()["area"] == int(mask.sum())  # the server gives isegm.predict's mask
    finally:
        service.close()


def test_bad_training_files_one_line_each_before_training(tmp_path, capsys):
    labels = np.zeros((40, 50), np.uint8)
    labels[5:20, 5:20] = 1
    from isegm.serve.formats import coco_document

    (tmp_path / "a.json").write_text(json.dumps(coco_document(labels, "gone.png")))
    (tmp_path / "b.json").write_text("{not json")
    exps = tmp_path / "exps"
    code = main([SCRIPT, "--cpu", "--exps-path", str(exps), "--train-data",
                 f"COCO:{tmp_path / 'a.json'}", "--train-data", f"COCO:{tmp_path / 'b.json'}",
                 "--val-fraction", "0.5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 3, err  # one line per bad file, then the summary
    assert all(line.startswith("error: ") for line in err)
    assert sorted("gone.png" in x for x in err[:2]) == [False, True]
    assert sorted("b.json" in x for x in err[:2]) == [False, True]
    assert "nothing was trained" in err[2]
    assert not exps.exists()  # checked before any experiment folder


def test_train_data_needs_finetune_script(tmp_path, capsys):
    code = main([str(REPO / "models" / "mst_tiny_synthetic.py"), "--cpu", "--exps-path",
                 str(tmp_path), "--train-data", f"ImagesDir:{tmp_path}"])
    assert code == 2 and "models/finetune.py" in capsys.readouterr().err


@pytest.mark.parametrize("argv, words", [
    (["--train-data", "Folder:x"], "expected ImagesDir:<folder> or COCO:"),
    (["--val-fraction", "0.3"], "need --train-data"),
    (["--train-data", "ImagesDir:x", "--val-fraction", "1.5"], "between 0 and 1"),
])
def test_bad_flags_exit_2(argv, words, capsys):
    with pytest.raises(SystemExit) as e:
        main([SCRIPT, *argv])
    assert e.value.code == 2 and words in capsys.readouterr().err


def test_default_weights_file_exists():
    assert (REPO / "weights" / DEFAULT_MODEL_FILE).is_file()


def _tiny_folder(folder: Path, num: int) -> None:
    """An ``ImagesDir`` folder of ``num`` small synthetic scenes, one large object each."""
    scenes = SyntheticEvalDataset(num_samples=num, image_size=96, seed=2, scale="large")
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    for i in range(len(scenes)):
        s = scenes.get_sample(i)
        cv2.imwrite(str(folder / "images" / f"{i}.png"), cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(folder / "masks" / f"{i}.png"), (s.gt_mask(0) == 1).astype(np.uint8))


@pytest.mark.slow
def test_dis_train_two_cpu_processes(tmp_path):
    """``dis_train.py --cpu --nproc 2`` takes the same flags: one step on both ranks, which end
    with the same weights, a validation split between them, and ``best.pth`` kept."""
    folder, exps = tmp_path / "data", tmp_path / "exps"
    _tiny_folder(folder, 6)
    port = str(29600 + os.getpid() % 300)
    cmd = [sys.executable, str(REPO / "dis_train.py"), SCRIPT, "--cpu", "--nproc", "2",
           "--dport", port, "--workers", "0", "--epochs", "1", "--max-steps-per-epoch", "1",
           "--batch-size", "4", "--val-fraction", "0.34", "--val-objects", "2", "--min-area",
           "10", "--train-data", f"ImagesDir:{folder}", "--exps-path", str(exps)]
    proc = subprocess.run(cmd, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = exps / "finetune" / "000_run"
    sums = json.loads((run / "weights_checksum.json").read_text())["per_rank"]
    assert len(sums) == 2 and sums[0] == sums[1]
    assert (run / "checkpoints" / "best.pth").is_file()
    assert "(2 objects)" in proc.stderr + proc.stdout  # both ranks' validation objects counted


def test_resume_is_exact(tmp_path):
    """Two epochs in one run equal one epoch, then ``--resume-exp`` for the second (without
    --weights: the model comes from the resumed checkpoint)."""
    folder = tmp_path / "data"
    _tiny_folder(folder, 4)
    common = [SCRIPT, "--cpu", "--workers", "0", "--max-steps-per-epoch", "1", "--batch-size",
              "2", "--val-fraction", "0.25", "--val-objects", "1", "--min-area", "10",
              "--train-data", f"ImagesDir:{folder}"]
    assert main([*common, "--epochs", "2", "--exps-path", str(tmp_path / "a")]) == 0
    assert main([*common, "--epochs", "1", "--exps-path", str(tmp_path / "b")]) == 0
    assert main([*common, "--epochs", "2", "--exps-path", str(tmp_path / "b"),
                 "--resume-exp", "000"]) == 0
    whole, resumed = (torch.load(tmp_path / x / "finetune" / "000_run" / "checkpoints" /
                                 "last.pth", map_location="cpu", weights_only=True)["model"]
                      for x in ("a", "b"))
    for k, v in whole.items():
        assert torch.equal(v, resumed[k]), k
