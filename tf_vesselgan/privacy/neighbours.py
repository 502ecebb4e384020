"""Exact nearest neighbours in Euclidean distance, chunked BLAS matrix products.

Exact, not approximate: for 41,000 × 41,000 patches of 96×96×2 this is ~6e13 FLOP,
minutes on a CPU (measured by `benchmarks/bench_neighbours.py`), and an audit should
not miss the one copied patch an approximate index could skip.
"""
from __future__ import annotations

import numpy as np


def flatten_pairs(pairs: np.ndarray) -> np.ndarray:
    """[N, P, P, C] → float32 [N, P·P·C] (image in [-1, 1], label in {0, 1})."""
    pairs = np.asarray(pairs, np.float32)
    return pairs.reshape(len(pairs), -1)


def nearest(queries: np.ndarray, reference: np.ndarray, chunk: int = 1024,
            exclude_self: bool = False, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the index of and Euclidean distance to its closest reference row.

    Distances come from ‖q‖² + ‖r‖² − 2 q·r in float32 (fast, BLAS), then the distance
    to the chosen neighbour is recomputed in float64 so exact copies give exactly 0.

    Args:
        queries: [M, D]; reference: [N, D] (float32 preferred; converted otherwise).
        chunk: query rows per matrix product (memory ≈ chunk × N × 4 bytes).
        exclude_self: queries and reference are the same set; a row is not its own neighbour.
        progress: optional callable(rows_done) for a progress bar.
    Returns:
        (index int64 [M], distance float64 [M]).
    """
    q = np.ascontiguousarray(queries, np.float32)
    r = np.ascontiguousarray(reference, np.float32)
    if q.ndim != 2 or r.ndim != 2 or q.shape[1] != r.shape[1]:
        raise ValueError(f"nearest: shapes {q.shape} and {r.shape} do not match")
    if len(r) == 0:
        raise ValueError("nearest: empty reference set")
    r_sq = np.einsum("ij,ij->i", r, r)
    index = np.empty(len(q), np.int64)
    for start in range(0, len(q), chunk):
        block = q[start:start + chunk]
        d2 = r_sq[None, :] - 2.0 * (block @ r.T)  # + ‖q‖², constant per row: not needed for argmin
        if exclude_self:
            rows = np.arange(len(block))
            d2[rows, start + rows] = np.inf
        index[start:start + len(block)] = np.argmin(d2, axis=1)
        if progress is not None:
            progress(len(block))
    diff = q.astype(np.float64) - r[index].astype(np.float64)
    return index, np.sqrt(np.einsum("ij,ij->i", diff, diff))
