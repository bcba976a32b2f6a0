"""Batching: clicks of concurrent sessions share forwards and give the single-session results.

Float32 kernels may round differently for another number of rows (about 1e-6 on
probabilities), so equality is checked with the model in float64: masks identical, probabilities
equal to float32 rounding.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from isegm.inference.batched import (
    EmbeddingCache,
    ForwardRequest,
    bucket_requests,
    concat_embeddings,
    forward_batch,
    split_embedding,
)
from isegm.inference.clicker import Click
from tests.serve.conftest import decode_png, png_bytes, reference_predictor, small_image

# same-size images (481x321 -> 240x160) and one of another shape (520x450 -> 240x208)
SAME = ["86016", "271008", "153093"]
OTHER = "bool"
CLICKS = [(123.0, 49.0, True), (60.0, 30.0, False)]


@pytest.fixture(scope="module")
def model64(model):
    import copy

    return copy.deepcopy(model).double()


def _request(net, h, w, clicks, seed):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 4, h, w, generator=g, dtype=torch.float64)
    lists = [[Click(is_positive=p, coords=(y, x), indx=i) for i, (y, x, p) in enumerate(clicks)]]
    return ForwardRequest(net, image, lists * 2, image_changed=True, cache=EmbeddingCache())


def test_forward_batch_equals_single_forwards(model64):
    shapes_clicks = [
        (64, 96, [(50, 60, True)]),
        (64, 96, [(20, 30, True), (40, 90, False), (60, 75, True)]),  # padded points
        (96, 96, [(10, 10, True)]),
        (64, 96, [(50, 20, False), (5, 5, True)]),
    ]
    batch = [_request(model64, h, w, c, i) for i, (h, w, c) in enumerate(shapes_clicks)]
    single = [_request(model64, h, w, c, i) for i, (h, w, c) in enumerate(shapes_clicks)]
    groups = bucket_requests(batch)
    assert groups == [[0, 1, 3], [2]]
    outputs = {}
    for group in groups:
        for i, out in zip(group, forward_batch([batch[i] for i in group])):
            outputs[i] = out
    for i, r in enumerate(single):
        (expected,) = forward_batch([r])
        assert outputs[i].shape == expected.shape == (2, 1, *shapes_clicks[i][:2])
        torch.testing.assert_close(outputs[i], expected, rtol=0, atol=1e-10)
        # the embedding cached by the batched call is the one a single call computes
        for key, value in r.cache.embedding.items():
            got = batch[i].cache.embedding[key]
            if torch.is_tensor(value):
                torch.testing.assert_close(got, value, rtol=0, atol=1e-10)
            else:
                assert got == value
    # cached embeddings are used: a second batched call encodes nothing
    calls = []
    original = model64.encode_image
    model64.encode_image = lambda rgb: calls.append(rgb.shape) or original(rgb)
    try:
        for r in batch:
            r.image_changed = False
        again = forward_batch([batch[i] for i in groups[0]])
    finally:
        del model64.encode_image
    assert calls == []
    for i, out in zip(groups[0], again):
        torch.testing.assert_close(out, outputs[i], rtol=0, atol=0)


def test_forward_batch_refuses_mixed_shapes(model64):
    a = _request(model64, 64, 96, [(5, 5, True)], 0)
    b = _request(model64, 96, 96, [(5, 5, True)], 1)
    with pytest.raises(ValueError, match="one shape"):
        forward_batch([a, b])


def test_embedding_concat_split_round_trip(model64):
    rgb = torch.rand(4, 3, 64, 96, dtype=torch.float64)
    with torch.no_grad():
        whole = model64.encode_image(rgb)
    parts = split_embedding(whole, [2, 2])
    joined = concat_embeddings(parts)
    for key, value in whole.items():
        if torch.is_tensor(value):
            assert torch.equal(joined[key], value)
            if not key.startswith("pos"):
                assert parts[0][key].shape[0] == 2
        else:
            assert joined[key] == value


@pytest.mark.slow
def test_concurrent_sessions_batched_equal_single_sessions(make_client, model64, grabcut_dir):
    client, service = make_client(model64)
    stems = SAME + [OTHER]
    images = [small_image(grabcut_dir, s) for s in stems]
    sids = [client.post("/api/sessions", files={"image": (f"{s}.png", png_bytes(im), "image/png")})
            .json()["session_id"] for s, im in zip(stems, images)]
    worker = service.worker
    results: dict[tuple[int, int], dict] = {}
    for step, (x, y, positive) in enumerate(CLICKS):
        worker.pause()

        def post(i: int, x: float = x, y: float = y, positive: bool = positive,
                 step: int = step) -> None:
            r = client.post(f"/api/sessions/{sids[i]}/clicks",
                            json={"x": x + 3 * i, "y": y + i, "positive": positive})
            results[(i, step)] = r.json()

        threads = [threading.Thread(target=post, args=(i,)) for i in range(len(sids))]
        for t in threads:
            t.start()
        # safety net only: on a loaded machine the posts may take long to be queued
        deadline = time.monotonic() + 600
        while worker.pending < len(sids) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.pending == len(sids), "the clicks were never all queued (safety net)"
        forwards_before = worker.stats.forwards
        worker.resume()
        for t in threads:
            t.join(300)
        # one forward per input shape (the first click may already run on a ZoomIn crop of
        # the model's size, then all four sessions share it)
        assert worker.stats.forwards - forwards_before <= 2
        assert worker.stats.max_batch >= len(SAME)
        deadline = time.monotonic() + 600
        while worker.pending and time.monotonic() < deadline:
            time.sleep(0.01)

    for i, image in enumerate(images):
        ref = reference_predictor(model64, service.config)
        ref.set_image(image)
        session = service.store.get(sids[i])
        for step in range(len(CLICKS)):
            clicks = [(x + 3 * i, y + i, p) for x, y, p in CLICKS[: step + 1]]
            expected, prob = ref.predict(clicks)
            got = results[(i, step)]
            assert got["clicks"] == [list(c) for c in clicks]
            np.testing.assert_array_equal(decode_png(got["mask_png"]) > 0, expected)
        np.testing.assert_allclose(session.controller.current_prob, prob, rtol=0, atol=1e-6)
