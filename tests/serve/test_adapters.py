"""CVAT interactor and Label Studio ML backend adapters: their request and response formats,
masks equal to isegm.predict's for the same clicks."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from isegm.serve.formats import ls_rle_decode, ls_rle_encode
from tests.serve.conftest import png_b64, reference_predictor

POS, NEG = [[123, 49], [130, 60]], [[40, 20]]


def test_cvat_interactor(make_client, model, image_a):
    client, service = make_client()
    ref = reference_predictor(model, service.config)
    ref.set_image(image_a)
    image = png_b64(image_a)
    for n in (1, 2):  # CVAT sends all points on every call; the session is reused
        r = client.post("/cvat/interactor",
                        json={"image": image, "pos_points": POS[:n], "neg_points": NEG})
        assert r.status_code == 200, r.text
        out = r.json()
        expected, _ = ref.predict(
            [(x, y, True) for x, y in POS[:n]] + [(x, y, False) for x, y in NEG]
        )
        mask = np.asarray(out["mask"], dtype=np.uint8)
        assert mask.shape == image_a.shape[:2] and set(np.unique(mask)) == {0, 255}
        np.testing.assert_array_equal(mask > 0, expected)
        # "points": the outline of the largest region, in image pixels
        poly = np.asarray(out["points"], dtype=np.int32)
        assert poly.ndim == 2 and poly.shape[1] == 2 and len(poly) >= 3
        assert (poly >= 0).all() and (poly[:, 0] < 240).all() and (poly[:, 1] < 160).all()
        filled = np.zeros_like(mask)
        cv2.fillPoly(filled, [poly], 1)
        n_cc, cc = cv2.connectedComponents(expected.astype(np.uint8))
        largest = cc == 1 + np.argmax(np.bincount(cc[cc > 0])) if n_cc > 2 else expected
        iou = (filled.astype(bool) & largest).sum() / (filled.astype(bool) | largest).sum()
        assert iou > 0.9
    assert len(service.store) == 1


def test_cvat_threshold_and_bad_requests(make_client, image_a):
    client, _ = make_client()
    image = png_b64(image_a)
    low = client.post("/cvat/interactor",
                      json={"image": image, "pos_points": POS[:1], "threshold": 0.05}).json()
    high = client.post("/cvat/interactor",
                       json={"image": image, "pos_points": POS[:1], "threshold": 0.95}).json()
    assert np.asarray(low["mask"]).sum() > np.asarray(high["mask"]).sum()
    for body, status, word in [
        ({"image": image}, 400, "no points"),
        ({"image": image, "pos_points": [[500, 5]]}, 400, "outside"),
        ({"image": image, "pos_points": [[5]]}, 422, "pos_points[0]"),
        ({"image": "@@@", "pos_points": [[5, 5]]}, 400, "base64"),
        ({"pos_points": [[5, 5]]}, 422, "image"),
    ]:
        r = client.post("/cvat/interactor", json=body)
        assert r.status_code == status and word in r.json()["error"], r.text


# the example labelling config of the docs
DOCS = Path(__file__).resolve().parents[2] / "docs"
LABEL_CONFIG = (DOCS / "label_studio_config.xml").read_text()


def keypoint(x: float, y: float, positive: bool) -> dict:
    return {
        "original_width": 240, "original_height": 160, "image_rotation": 0,
        "value": {"x": 100 * x / 240, "y": 100 * y / 160, "width": 0.5,
                  "keypointlabels": ["Object"]},
        "is_positive": positive, "id": "k", "from_name": "kp", "to_name": "image",
        "type": "keypointlabels", "origin": "manual",
    }


def test_label_studio_backend(make_client, model, image_a):
    client, service = make_client()
    assert client.get("/health").json()["status"] == "UP"
    assert "model_version" in client.post("/setup", json={"project": "1",
                                                          "label_config": LABEL_CONFIG}).json()
    task = {"id": 7, "data": {"image": "data:image/png;base64," + png_b64(image_a)}}
    # pre-annotation without a click: nothing proposed
    assert client.post("/predict", json={"tasks": [task]}).json() == {"results": []}

    clicks = [(123.0, 49.0, True), (40.0, 20.0, False)]
    body = {
        "tasks": [task], "label_config": LABEL_CONFIG, "project": "1",
        "params": {"context": {"result": [keypoint(*c) for c in clicks]}},
    }
    r = client.post("/predict", json=body)
    assert r.status_code == 200, r.text
    (prediction,) = r.json()["results"]
    (item,) = prediction["result"]
    assert item["type"] == "brushlabels" and item["from_name"] == "brush"
    assert item["to_name"] == "image"
    assert (item["original_width"], item["original_height"]) == (240, 160)
    assert item["value"]["format"] == "rle" and item["value"]["brushlabels"] == ["Object"]
    ref = reference_predictor(model, service.config)
    ref.set_image(image_a)
    expected, _ = ref.predict(clicks)
    assert expected.any()
    decoded = ls_rle_decode(item["value"]["rle"], 160, 240)
    np.testing.assert_array_equal(decoded, expected.astype(np.uint8) * 255)

    r = client.post("/predict", json={**body, "tasks": [{"data": {"image": "ftp://x/y.png"}}]})
    assert r.status_code == 400 and "data: URLs or http(s)" in r.json()["error"]
    r = client.post("/predict", json={"params": {}})
    assert r.status_code == 422 and "tasks" in r.json()["error"]


def _bits(value: int, width: int) -> str:
    return format(value, f"0{width}b")


def test_label_studio_rle_layout():
    """The bit layout of thi.ng/rle-pack as Label Studio reads brush masks: a 1x2 mask
    (object, background) is 8 RGBA bytes: a run of four 255 and a run of four 0."""
    header = _bits(8, 32) + _bits(7, 5) + "".join(_bits(s - 1, 4) for s in (3, 4, 8, 16))
    run = lambda value: "1" + _bits(0, 2) + _bits(3, 3) + _bits(value, 8)  # noqa: E731
    bits = header + run(255) + run(0)
    bits += "0" * (-len(bits) % 8)
    expected = [int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)]
    assert ls_rle_encode(np.array([[True, False]])) == expected


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (160, 240), (300, 300)])
def test_label_studio_rle_round_trip(shape):
    rng = np.random.default_rng(sum(shape))
    mask = rng.random(shape) > 0.5
    mask[: shape[0] // 2] = True  # long runs (several 16-bit run fields) and short ones
    np.testing.assert_array_equal(ls_rle_decode(ls_rle_encode(mask), *shape) > 0, mask)


def test_cvat_nuclio_function_of_the_docs_forwards_to_the_server(server, image_a, monkeypatch):
    """docs/cvat/main.py (the nuclio handler of docs/cvat/function.yaml) against a real
    server, with stand-ins for nuclio's context and event."""
    import importlib.util
    from types import SimpleNamespace

    url, _ = server
    path = DOCS / "cvat" / "main.py"
    spec = importlib.util.spec_from_file_location("cvat_main", path)
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)

    class Response(SimpleNamespace):
        pass

    context = SimpleNamespace(user_data=SimpleNamespace(), Response=Response)
    monkeypatch.setenv("ISEGM_URL", url)
    handler.init_context(context)
    event = SimpleNamespace(body={"image": png_b64(image_a), "pos_points": POS[:1],
                                  "neg_points": []})
    out = handler.handler(context, event)
    assert out.status_code == 200 and out.content_type == "application/json"
    body = json.loads(out.body)
    assert np.asarray(body["mask"]).shape == (160, 240) and len(body["points"]) >= 3
    bad = handler.handler(context, SimpleNamespace(body={"image": "@@", "pos_points": [[1, 1]]}))
    assert bad.status_code == 400 and "base64" in json.loads(bad.body)["error"]
