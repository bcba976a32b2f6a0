"""The grid graph of the graph-cut refinement (:mod:`isegm.inference.refine`) and its minimum
cut: GrabCut's contrast-sensitive pairwise capacities on the 8-neighbourhood, hard labels under
the clicks, the cut itself (PyMaxflow; one graph per click, cut once per iteration) and the
parts connected to a positive click."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["OFFSETS", "GridCut", "click_distances", "click_labels", "edge_weights",
           "parts_with_positive_clicks"]

HARD = 1e9  # capacity of a hard constraint

#: (dy, dx) of the four forward neighbours of the 8-neighbourhood.
OFFSETS = ((0, 1), (1, 0), (1, 1), (1, -1))


def edge_weights(image: np.ndarray, smoothness: float) -> list[np.ndarray]:
    """Per-offset H×W capacities of GrabCut's contrast-sensitive pairwise term (an edge from
    pixel (y, x) to (y + dy, x + dx); zero where the neighbour is outside the image)."""
    height, width = image.shape[:2]
    diffs = []
    for dy, dx in OFFSETS:
        d = np.zeros((height, width), np.float32)
        y0, y1 = 0, height - dy
        x0, x1 = max(0, -dx), width - max(0, dx)
        a = image[y0:y1, x0:x1]
        b = image[y0 + dy:y1 + dy, x0 + dx:x1 + dx]
        d[y0:y1, x0:x1] = ((a - b) ** 2).sum(axis=2)
        valid = np.zeros((height, width), bool)
        valid[y0:y1, x0:x1] = True
        diffs.append((d, valid))
    total = sum(float(d[v].sum()) for d, v in diffs)
    count = sum(int(v.sum()) for _, v in diffs)
    beta = 1.0 / (2.0 * total / count) if total > 0 else 0.0
    out = []
    for (d, valid), (dy, dx) in zip(diffs, OFFSETS):
        w = smoothness * np.exp(-beta * d) / np.hypot(dy, dx)
        out.append(np.where(valid, w, 0).astype(np.float32))
    return out


def _structure(dy: int, dx: int) -> np.ndarray:
    s = np.zeros((3, 3), np.float32)
    s[1 + dy, 1 + dx] = 1
    return s


def _terminal_capacities(log_odds: np.ndarray,
                         hard: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    source = np.maximum(log_odds, 0).astype(np.float64)
    sink = np.maximum(-log_odds, 0).astype(np.float64)
    source[hard == 1], sink[hard == 1] = HARD, 0
    source[hard == 0], sink[hard == 0] = 0, HARD
    return source, sink


class GridCut:
    """One grid graph cut again and again with new unaries (the refinement's iterations).

    The pairwise capacities are set once. A later :meth:`cut` adds only the change of the
    terminal capacities and lets the Boykov-Kolmogorov max-flow reuse its search trees
    (dynamic graph cuts, Kohli & Torr 2005): the same minimum cut as a fresh graph, with less
    work once the colour models settle.
    """

    def __init__(self, shape: tuple[int, int], edges: list[np.ndarray]) -> None:
        import maxflow  # PyMaxflow: imported here so that a plain evaluation does not need it

        self._graph = maxflow.Graph[float]()
        self._nodes = self._graph.add_grid_nodes(shape)
        for weights, (dy, dx) in zip(edges, OFFSETS):
            self._graph.add_grid_edges(self._nodes, weights=weights,
                                       structure=_structure(dy, dx), symmetric=True)
        self._terminals: tuple[np.ndarray, np.ndarray] | None = None

    def cut(self, log_odds: np.ndarray, hard: np.ndarray) -> np.ndarray:
        """Foreground pixels of the minimum cut: unary log-odds (positive: foreground), hard
        labels (1 fg, 0 bg, -1 free)."""
        source, sink = _terminal_capacities(log_odds, hard)
        if self._terminals is None:
            self._graph.add_grid_tedges(self._nodes, source, sink)
            self._graph.maxflow()
        else:
            d_source, d_sink = source - self._terminals[0], sink - self._terminals[1]
            changed = (d_source != 0) | (d_sink != 0)
            if changed.any():  # else the graph, and so its cut, is the one cut last time
                self._graph.add_grid_tedges(self._nodes, d_source, d_sink)
                self._graph.mark_grid_nodes(self._nodes[changed])
                self._graph.maxflow(reuse_trees=True)
        self._terminals = (source, sink)
        return ~self._graph.get_grid_segments(self._nodes)  # True = source side = foreground


def click_distances(clicks: list[tuple[float, float, bool]],
                    shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Float32 distance of every pixel to the nearest positive and to the nearest negative
    click ``(y, x, positive)`` (inf where there is none): the first-click priors of the
    refinement and of classical GrabCut."""
    ys, xs = np.ogrid[:shape[0], :shape[1]]
    nearest = {True: np.full(shape, np.inf, np.float32), False: np.full(shape, np.inf, np.float32)}
    for y, x, positive in clicks:
        d = np.hypot(ys - y, xs - x).astype(np.float32)
        nearest[bool(positive)] = np.minimum(nearest[bool(positive)], d)
    return nearest[True], nearest[False]


def click_labels(clicks: list[tuple[float, float, bool]], shape: tuple[int, int],
                  radius: int) -> np.ndarray:
    """1 / 0 in the disk of each positive / negative click (later clicks win), -1 elsewhere."""
    labels = np.full(shape, -1, np.int8)
    for y, x, positive in clicks:
        cv2.circle(labels, (int(x), int(y)), radius, 1 if positive else 0, -1)
    return labels


def parts_with_positive_clicks(segment: np.ndarray,
                                clicks: list[tuple[float, float, bool]]) -> np.ndarray:
    count, labels = cv2.connectedComponents(segment.astype(np.uint8), connectivity=8)
    if count <= 2:
        return segment
    sh, sw = segment.shape
    keep = {int(labels[min(int(y), sh - 1), min(int(x), sw - 1)])
            for y, x, p in clicks if p}
    keep.discard(0)
    return np.isin(labels, list(keep)) if keep else segment
