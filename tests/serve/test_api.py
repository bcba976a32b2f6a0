"""JSON API: masks equal isegm.predict's, exports decode to the label map, session isolation."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from tests.serve.conftest import decode_png, png_b64, png_bytes, reference_predictor

# clicks on the 240x160 image A: object, background, object
CLICKS = [(123.0, 49.0, True), (40.0, 20.0, False), (130.0, 60.0, True)]
# two objects on image A: a larger one, then a smaller one inside it (painted over it)
OBJECTS = [[(110.0, 45.0, True)], CLICKS[:1]]


def create(client, image, name="a.png", how="multipart"):
    if how == "multipart":
        r = client.post("/api/sessions", files={"image": (name, png_bytes(image), "image/png")})
    else:
        r = client.post("/api/sessions", json={"image": png_b64(image), "name": name})
    assert r.status_code == 201, r.text
    return r.json()


def click(client, sid, x, y, positive):
    r = client.post(f"/api/sessions/{sid}/clicks", json={"x": x, "y": y, "positive": positive})
    assert r.status_code == 200, r.text
    return r.json()


def rle_mask(rle: dict) -> np.ndarray:
    return coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)


def test_clicks_undo_reset_give_the_masks_of_isegm_predict(make_client, model, image_a):
    client, service = make_client()
    info = create(client, image_a)
    assert (info["width"], info["height"]) == (image_a.shape[1], image_a.shape[0])
    sid = info["session_id"]
    ref = reference_predictor(model, service.config)
    ref.set_image(image_a)
    for n in range(1, len(CLICKS) + 1):
        state = click(client, sid, *CLICKS[n - 1])
        expected, _ = ref.predict(CLICKS[:n])
        assert expected.any()
        np.testing.assert_array_equal(decode_png(state["mask_png"]) > 0, expected)
        np.testing.assert_array_equal(rle_mask(state["rle"]), expected)
        assert state["area"] == int(expected.sum())
        rows, cols = np.nonzero(expected)
        assert state["bbox"] == [cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1]
        assert state["clicks"] == [list(c) for c in CLICKS[:n]]
        assert state["ms"] > 0 and state["model_ms"] > 0

    state = client.post(f"/api/sessions/{sid}/undo").json()
    np.testing.assert_array_equal(decode_png(state["mask_png"]) > 0, ref.predict(CLICKS[:2])[0])
    assert len(state["clicks"]) == 2
    state = client.post(f"/api/sessions/{sid}/reset").json()
    assert state["clicks"] == [] and state["mask_png"] is None and state["rle"] is None
    assert client.get(f"/api/sessions/{sid}").json()["clicks"] == []


def test_base64_and_data_uri_uploads(client, image_a):
    a = create(client, image_a, how="json")
    r = client.post(
        "/api/sessions", json={"image": "data:image/png;base64," + png_b64(image_a)}
    )
    assert r.status_code == 201
    b = r.json()
    assert (a["width"], a["height"]) == (b["width"], b["height"]) == (240, 160)


def test_label_map_and_coco_export(make_client, model, image_a):
    client, service = make_client()
    sid = create(client, image_a, name="photo.jpg")["session_id"]
    ref = reference_predictor(model, service.config)
    ref.set_image(image_a)
    expected = np.zeros(image_a.shape[:2], np.uint8)
    for k, clicks in enumerate(OBJECTS, 1):
        for c in clicks:
            click(client, sid, *c)
        expected[ref.predict(clicks)[0]] = k  # later objects paint over earlier ones
        out = client.post(f"/api/sessions/{sid}/finish").json()
        assert out == {"session_id": sid, "added": True, "objects": k}
    # the object in progress is not part of the export
    click(client, sid, 60.0, 120.0, True)

    r = client.get(f"/api/sessions/{sid}/labels.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    labels = decode_png(r.content)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, expected)
    assert set(np.unique(labels)) == {0, 1, 2}

    doc = client.get(f"/api/sessions/{sid}/coco.json").json()
    assert doc["images"] == [{"id": 1, "file_name": "photo.jpg", "width": 240, "height": 160}]
    painted = np.zeros_like(labels)
    for ann in doc["annotations"]:
        m = rle_mask(ann["segmentation"])
        assert ann["area"] == int(m.sum())
        rows, cols = np.nonzero(m)
        assert ann["bbox"] == [cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1]
        assert ann["iscrowd"] == 0 and ann["category_id"] == 1
        painted[m] = ann["id"]
    np.testing.assert_array_equal(painted, labels)


def test_sessions_are_isolated_and_ids_unguessable(client, image_a, image_b):
    a = create(client, image_a)["session_id"]
    b = create(client, image_b)["session_id"]
    assert a != b and len(a) >= 32 and len(b) >= 32
    click(client, a, *CLICKS[0])
    state_b = client.get(f"/api/sessions/{b}").json()
    assert state_b["clicks"] == [] and state_b["mask_png"] is None
    assert (state_b["width"], state_b["height"]) == (image_b.shape[1], image_b.shape[0])
    assert client.delete(f"/api/sessions/{a}").json() == {"deleted": a}
    for method, path in [("get", ""), ("post", "/undo"), ("get", "/labels.png")]:
        r = getattr(client, method)(f"/api/sessions/{a}{path}")
        assert r.status_code == 404 and "unknown session" in r.json()["error"]
    assert client.get(f"/api/sessions/{b}").status_code == 200


def test_page_and_openapi(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    spec = client.get("/openapi.json").json()
    for path in ["/api/sessions", "/api/sessions/{session_id}/clicks", "/cvat/interactor",
                 "/predict", "/health", "/setup", "/api/sessions/{session_id}/coco.json"]:
        assert path in spec["paths"], path
    assert "multipart/form-data" in spec["paths"]["/api/sessions"]["post"]["requestBody"]["content"]


@pytest.mark.parametrize("objects", [0])
def test_finish_without_clicks_adds_nothing(client, image_a, objects):
    sid = create(client, image_a)["session_id"]
    out = client.post(f"/api/sessions/{sid}/finish").json()
    assert out["added"] is False and out["objects"] == objects
    labels = decode_png(client.get(f"/api/sessions/{sid}/labels.png").content)
    assert labels.shape == (160, 240) and not labels.any()
    assert client.get(f"/api/sessions/{sid}/coco.json").json()["annotations"] == []


def test_refinement_per_server_session_and_click(make_client, model, image_a):
    """The server's default refinement, a session's own (create), a click's switch: each mask
    equals isegm.predict's with that refinement."""
    from isegm.predict import Predictor

    client, service = make_client(refine="grabcut")
    assert client.get("/api/info").json()["refine"] == "grabcut"
    c = service.config
    refs = {}
    for mode in ("none", "grabcut"):
        refs[mode] = Predictor(model, device="cpu", limit_longest_size=c.limit_longest_size,
                               zoom_in=c.zoom_in, threshold=c.threshold, refine=mode)
        refs[mode].set_image(image_a)
    expected = {m: [refs[m].predict(CLICKS[:n])[0] for n in (1, 2)] for m in refs}
    assert not np.array_equal(expected["none"][0], expected["grabcut"][0])

    sid = create(client, image_a)["session_id"]  # the server's default
    state = click(client, sid, *CLICKS[0])
    assert state["refine"] == "grabcut"
    np.testing.assert_array_equal(decode_png(state["mask_png"]) > 0, expected["grabcut"][0])
    r = client.post(f"/api/sessions/{sid}/clicks", json={"x": CLICKS[1][0], "y": CLICKS[1][1],
                                                         "positive": False, "refine": "none"})
    assert r.status_code == 200 and r.json()["refine"] == "none"
    np.testing.assert_array_equal(decode_png(r.json()["mask_png"]) > 0, expected["none"][1])
    state = client.post(f"/api/sessions/{sid}/undo").json()  # undo keeps the session's mode
    np.testing.assert_array_equal(decode_png(state["mask_png"]) > 0, expected["none"][0])

    for how in ("json", "multipart"):
        if how == "json":
            r = client.post("/api/sessions", json={"image": png_b64(image_a), "refine": "none"})
        else:
            r = client.post("/api/sessions", files={"image": ("a.png", png_bytes(image_a),
                                                              "image/png")},
                            data={"refine": "none"})
        assert r.status_code == 201 and r.json()["refine"] == "none", r.text
        state = click(client, r.json()["session_id"], *CLICKS[0])
        np.testing.assert_array_equal(decode_png(state["mask_png"]) > 0, expected["none"][0])

    r = client.post("/api/sessions", json={"image": png_b64(image_a), "refine": "crf"})
    assert r.status_code == 422 and "refine" in r.json()["error"]
    r = client.post("/api/sessions", files={"image": ("a.png", png_bytes(image_a), "image/png")},
                    data={"refine": "crf"})
    assert r.status_code == 422 and "'refine'" in r.json()["error"]
    r = client.post(f"/api/sessions/{sid}/clicks",
                    json={"x": 1, "y": 1, "positive": True, "refine": True})
    assert r.status_code == 422 and "refine" in r.json()["error"]
