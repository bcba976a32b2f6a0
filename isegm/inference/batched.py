"""The network step of a click, batched over several predictors (annotation server, lockstep
evaluation).

A click of :class:`~isegm.inference.predictor.NoBRSPredictor` is three pieces:

1. *prepare*: the test-time transforms turn the image, the previous mask and the clicks into a
   :class:`ForwardRequest` (the network input of one predictor: 2 rows with flip, else 1);
2. *forward*: :func:`forward_batch` runs the network on any number of requests at once;
3. *finish*: the inverse transforms map the logits back to the image (ZoomIn may ask for one more
   pass, the cascade for more passes).

The single-predictor path calls :func:`forward_batch` with one request, so a batched run differs
from it only in how many rows the network sees at once.

Batching rule: requests are only batched where their network inputs have the same shape (same
``[C, H, W]``, device, dtype, network and click limit): :func:`bucket_requests` groups them,
nothing is resized or padded spatially. The click lists of a batch are packed into one points
tensor padded with ``(-1, -1, -1)`` rows (as :func:`clicks_to_points` pads any batch); padding
rows are ignored by the disk maps and the token selection, so they do not change the output.
Results of a batched forward equal the single ones up to float rounding: BLAS/oneDNN kernels
may split their sums differently for another number of rows (measured: ~2e-6 in float32 on
probabilities, nothing visible in thresholded masks; ``tests/serve`` checks masks in float64).

Cached image encodings: a network with ``encode_image`` / ``forward_embedded`` keeps the
click-independent embedding of each predictor in its :class:`EmbeddingCache`; requests whose
image changed are encoded together in one call, then all embeddings of the bucket are
concatenated for one ``forward_embedded``. Embedding entries are tensors with the batch in
dim 0, except the shared position embeddings (keys starting with ``pos``, ``[1, N, C]``) and
non-tensor entries (grid, size), which are the same for every request of a bucket.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F

from isegm.inference.clicker import clicks_to_points
from isegm.inference.transforms.base import ClicksLists

__all__ = [
    "EmbeddingCache",
    "ForwardRequest",
    "ForwardRunner",
    "bucket_requests",
    "concat_embeddings",
    "forward_batch",
    "split_embedding",
]

logger = logging.getLogger(__name__)


@dataclass
class EmbeddingCache:
    """One predictor's cached image embedding and the input it was computed for."""

    embedding: Any = None
    key: tuple | None = None

    def clear(self) -> None:
        self.embedding = None
        self.key = None


@dataclass
class ForwardRequest:
    """The prepared network input of one predictor for one forward pass.

    Attributes:
        net: the network (``net(image, points)``, optionally ``encode_image`` /
            ``forward_embedded``).
        image_nd: ``[b, C, H, W]`` transformed input: RGB, plus the previous mask as channel 3
            when ``with_prev_mask``.
        clicks_lists: ``b`` click lists in the coordinates of ``image_nd``.
        image_changed: the transformed RGB differs from the previous pass (new crop).
        cache: the predictor's embedding cache, or None for a network without
            ``encode_image``.
        with_prev_mask: channel 3 of ``image_nd`` is the previous mask.
        net_clicks_limit: at most this many (first) clicks per list go to the network.
    """

    net: torch.nn.Module
    image_nd: torch.Tensor
    clicks_lists: ClicksLists
    image_changed: bool
    cache: EmbeddingCache | None = None
    with_prev_mask: bool = True
    net_clicks_limit: int | None = None
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = int(self.image_nd.shape[0])
        if len(self.clicks_lists) != self.rows:
            raise ValueError(
                f"{len(self.clicks_lists)} click lists for an input of {self.rows} rows"
            )

    @property
    def bucket_key(self) -> tuple:
        """Requests with equal keys can share one forward."""
        t = self.image_nd
        return (
            id(self.net),
            tuple(t.shape[1:]),
            t.dtype,
            str(t.device),
            self.net_clicks_limit,
            self.cache is None,
            self.with_prev_mask,
        )


ForwardRunner = Callable[[Sequence[ForwardRequest]], list[torch.Tensor]]


def bucket_requests(requests: Sequence[ForwardRequest]) -> list[list[int]]:
    """Indices of ``requests`` grouped by :attr:`ForwardRequest.bucket_key`, in first-seen
    order (each group can run as one :func:`forward_batch`)."""
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(requests):
        groups.setdefault(r.bucket_key, []).append(i)
    return list(groups.values())


def _is_batched_entry(key: str, value: Any) -> bool:
    return torch.is_tensor(value) and not key.startswith("pos")


def concat_embeddings(embeddings: Sequence[dict]) -> dict:
    """One embedding for the concatenated batch of several (same-shape) embeddings."""
    if len(embeddings) == 1:
        return embeddings[0]
    first = embeddings[0]
    return {
        k: torch.cat([e[k] for e in embeddings]) if _is_batched_entry(k, v) else v
        for k, v in first.items()
    }


def split_embedding(embedding: dict, rows: Sequence[int]) -> list[dict]:
    """Inverse of :func:`concat_embeddings`: one embedding per consecutive block of ``rows``
    (copies, so one cached embedding does not keep the whole batch alive)."""
    if len(rows) == 1:
        return [embedding]
    out, start = [], 0
    for n in rows:
        out.append(
            {
                k: v[start : start + n].clone() if _is_batched_entry(k, v) else v
                for k, v in embedding.items()
            }
        )
        start += n
    return out


def _embedding_key(rgb: torch.Tensor) -> tuple:
    return (tuple(rgb.shape), str(rgb.device))


@torch.no_grad()
def forward_batch(requests: Sequence[ForwardRequest]) -> list[torch.Tensor]:
    """Runs the network once for requests of one bucket.

    Args:
        requests: same :attr:`ForwardRequest.bucket_key` (see :func:`bucket_requests`).

    Returns:
        Per request, ``[b, 1, H, W]`` logits at the size of its ``image_nd``.

    Raises:
        ValueError: the requests are not of one bucket.
    """
    if not requests:
        return []
    first = requests[0]
    if any(r.bucket_key != first.bucket_key for r in requests[1:]):
        raise ValueError("forward_batch needs requests of one shape; use bucket_requests")
    net = first.net
    rows = [r.rows for r in requests]
    image_nd = requests[0].image_nd if len(requests) == 1 else torch.cat(
        [r.image_nd for r in requests]
    )
    lists = [cl for r in requests for cl in r.clicks_lists]
    points = torch.from_numpy(clicks_to_points(lists, first.net_clicks_limit)).to(
        image_nd.device
    )

    # Networks with a patch grid need sides that are multiples of their largest patch:
    # zero-pad bottom/right (clicks keep their coordinates) and crop the logits back.
    h, w = (int(s) for s in image_nd.shape[2:])
    multiple = int(getattr(net, "min_size_multiple", 1) or 1)
    padded = (h + (-h) % multiple, w + (-w) % multiple)
    if padded != (h, w):
        image_nd = F.pad(image_nd, (0, padded[1] - w, 0, padded[0] - h))

    if first.cache is None:
        logits = net(image_nd, points)["instances"]
    else:
        rgb = image_nd[:, :3]
        prev = image_nd[:, 3:] if first.with_prev_mask else None
        _encode_stale(net, requests, rgb, rows)
        embedding = concat_embeddings([r.cache.embedding for r in requests])  # type: ignore
        logits = net.forward_embedded(embedding, prev, points)["instances"]

    if tuple(logits.shape[2:]) != padded:
        logits = F.interpolate(logits, size=padded, mode="bilinear", align_corners=True)
    logits = logits[:, :, :h, :w]
    return list(logits.split(rows)) if len(requests) > 1 else [logits]


def _encode_stale(
    net: torch.nn.Module, requests: Sequence[ForwardRequest], rgb: torch.Tensor, rows: list[int]
) -> None:
    """Encodes, in one call, the requests whose cached embedding is missing or stale."""
    starts = [sum(rows[:i]) for i in range(len(rows))]
    stale = []
    for i, r in enumerate(requests):
        cache = r.cache
        assert cache is not None
        part = rgb[starts[i] : starts[i] + rows[i]]
        if r.image_changed or cache.embedding is None or cache.key != _embedding_key(part):
            stale.append(i)
    if not stale:
        return
    parts = [rgb[starts[i] : starts[i] + rows[i]] for i in stale]
    batch = parts[0] if len(parts) == 1 else torch.cat(parts)
    embeddings = split_embedding(net.encode_image(batch), [rows[i] for i in stale])
    for i, part, emb in zip(stale, parts, embeddings):
        cache = requests[i].cache
        assert cache is not None
        cache.embedding, cache.key = emb, _embedding_key(part)
