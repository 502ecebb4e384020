"""Segmentation metrics as pure functions: Dice, precision, recall, 95 % Hausdorff (mm).

Empty-mask policy, the same in every function and every report:
- both masks empty: a perfect result — dice 1, precision 1, recall 1, hd95 0;
- exactly one empty: the worst result — dice 0, precision/recall 0 for the empty
  side, hd95 = the volume's diagonal in mm (the largest possible distance), so the case
  stays in every mean instead of being dropped as NaN; reports count these cases.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def _as_bool(a) -> np.ndarray:
    return np.asarray(a).astype(bool, copy=False)


def dice(pred, truth) -> float:
    """Dice coefficient 2|P∩T|/(|P|+|T|); 1.0 when both are empty."""
    p, t = _as_bool(pred), _as_bool(truth)
    denom = int(np.count_nonzero(p)) + int(np.count_nonzero(t))
    if denom == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(p & t)) / denom


def precision(pred, truth) -> float:
    """TP/(TP+FP); with an empty prediction 1.0 if the truth is empty too, else 0.0."""
    return _share_in(_as_bool(pred), _as_bool(truth))


def recall(pred, truth) -> float:
    """TP/(TP+FN); with an empty truth 1.0 if the prediction is empty too, else 0.0."""
    return _share_in(_as_bool(truth), _as_bool(pred))


def _share_in(base, other) -> float:
    """|base ∧ other| / |base|; with an empty base 1.0 if `other` is empty too, else 0.0."""
    n = int(np.count_nonzero(base))
    if n == 0:
        return 1.0 if not other.any() else 0.0
    return int(np.count_nonzero(base & other)) / n


def _surface_points(mask: np.ndarray, spacing: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Physical coordinates of the mask's border voxels.

    A border voxel is a mask voxel with at least one of its 6 face neighbours outside
    the mask or outside the volume: exactly mask minus its binary erosion with the
    face-connected structuring element and background beyond the edge, as MedPy does.
    Checking only the mask's own voxels keeps this fast for sparse vessel masks.
    `mask` is a crop padded by one voxel wherever the crop is inside the volume.
    """
    coords = np.nonzero(mask)
    border = np.zeros(coords[0].size, bool)
    for axis in range(mask.ndim):
        for step in (-1, 1):
            nb = list(coords)
            nb[axis] = coords[axis] + step
            outside = (nb[axis] < 0) | (nb[axis] >= mask.shape[axis])
            nb[axis] = np.clip(nb[axis], 0, mask.shape[axis] - 1)
            border |= outside | ~mask[tuple(nb)]
    pts = np.stack(coords, axis=1)[border]
    return (pts + offset) * spacing


def _bbox(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi) of the mask's non-zero voxels, from per-axis projections (no argwhere
    over the whole volume)."""
    lo, hi = [], []
    for axis in range(mask.ndim):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        nz = np.flatnonzero(mask.any(axis=others))
        lo.append(nz[0])
        hi.append(nz[-1] + 1)
    return np.array(lo), np.array(hi)


def surface_distances(pred, truth, spacing) -> tuple[np.ndarray, np.ndarray]:
    """Directed surface distances (mm): pred border → nearest truth border, and back."""
    p, t = _as_bool(pred), _as_bool(truth)
    sp = np.asarray(spacing, dtype=np.float64)
    if sp.shape != (p.ndim,):
        raise ValueError(f"spacing needs {p.ndim} values, got {list(np.atleast_1d(spacing))}")
    lo, hi = _bbox(p)
    lo_t, hi_t = _bbox(t)
    lo = np.maximum(np.minimum(lo, lo_t) - 1, 0)
    hi = np.minimum(np.maximum(hi, hi_t) + 1, p.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    pp = _surface_points(p[box], sp, lo)
    tp = _surface_points(t[box], sp, lo)
    d_pt = cKDTree(tp).query(pp, workers=-1)[0]
    d_tp = cKDTree(pp).query(tp, workers=-1)[0]
    return d_pt, d_tp


def hd95(pred, truth, spacing) -> float:
    """95th percentile of the pooled directed surface distances, in mm (MedPy's `hd95`).

    Both directed distance sets (pred→truth and truth→pred border voxels) are pooled
    and the 95th percentile (linear interpolation) taken, exactly as
    `medpy.metric.binary.hd95`. Distances come from a KD-tree over border voxels of
    the cropped masks, not a full-volume distance transform.

    Args:
        pred, truth: boolean arrays of the same shape.
        spacing: voxel size per axis in mm (from the NIfTI header).

    Returns:
        hd95 in mm; 0.0 when both are empty; the volume diagonal in mm when exactly one
        is empty (see the module's empty-mask policy).
    """
    p, t = _as_bool(pred), _as_bool(truth)
    if p.shape != t.shape:
        raise ValueError(f"shape mismatch {p.shape} vs {t.shape}")
    has_p, has_t = p.any(), t.any()
    if not has_p and not has_t:
        return 0.0
    if not (has_p and has_t):
        return empty_penalty(p.shape, spacing)
    d_pt, d_tp = surface_distances(p, t, spacing)
    return float(np.percentile(np.hstack((d_pt, d_tp)), 95))


def empty_penalty(shape, spacing) -> float:
    """The largest distance inside the volume: its diagonal in mm."""
    return float(np.linalg.norm((np.asarray(shape) - 1) * np.asarray(spacing, dtype=np.float64)))


def case_metrics(pred, truth, spacing) -> dict:
    """All metrics of one case plus its empty-mask flags."""
    p, t = _as_bool(pred), _as_bool(truth)
    return {"dice": dice(p, t), "hd95_mm": hd95(p, t, spacing), "precision": precision(p, t),
            "recall": recall(p, t), "pred_empty": not p.any(), "truth_empty": not t.any()}
