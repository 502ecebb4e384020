"""Metrics against MedPy (independent oracle) and hand-computed analytic shapes."""
import numpy as np
import pytest
from medpy.metric import binary as mb

from tf_vesselgan.evaluation.metrics import case_metrics, dice, empty_penalty, hd95, precision, recall


def cube(shape, lo, hi):
    m = np.zeros(shape, bool)
    m[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    return m


def sphere(shape, centre, r):
    g = np.indices(shape).transpose(1, 2, 3, 0)
    return ((g - np.asarray(centre)) ** 2).sum(-1) <= r * r


def test_shifted_cube_hand_computed():
    a = cube((20, 20, 20), (5, 5, 5), (15, 15, 15))
    b = cube((20, 20, 20), (7, 5, 5), (17, 15, 15))  # shifted by 2 voxels along x
    # shifted faces are 2 voxels apart along x: with 2 mm spacing 4 mm
    assert hd95(a, b, (2.0, 1.0, 1.0)) == pytest.approx(4.0)
    assert dice(a, b) == pytest.approx(2 * 800 / 2000)


@pytest.mark.parametrize("spacing", [(1, 1, 1), (0.5, 0.5, 0.7), (2.0, 0.3, 1.1)])
def test_agrees_with_medpy_on_analytic_shapes(spacing):
    pairs = [
        (cube((30, 30, 30), (5, 5, 5), (15, 15, 15)), cube((30, 30, 30), (8, 6, 5), (18, 16, 14))),
        (sphere((32, 32, 32), (16, 16, 16), 8), sphere((32, 32, 32), (18, 15, 16), 6)),
        (cube((20, 20, 20), (0, 0, 0), (10, 20, 20)), cube((20, 20, 20), (2, 0, 0), (20, 20, 20))),  # touching edges
    ]
    for a, b in pairs:
        assert hd95(a, b, spacing) == pytest.approx(mb.hd95(a, b, voxelspacing=spacing), abs=1e-6)
        assert dice(a, b) == pytest.approx(mb.dc(a, b), abs=1e-6)
        assert precision(a, b) == pytest.approx(mb.precision(a, b), abs=1e-6)
        assert recall(a, b) == pytest.approx(mb.recall(a, b), abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_agrees_with_medpy_on_random_masks_anisotropic(seed):
    rng = np.random.default_rng(seed)
    shape = (40, 36, 20)
    a = rng.random(shape) < 0.02
    b = a.copy()
    flip = rng.random(shape) < 0.01
    b ^= flip
    spacing = (0.5, 0.5, 0.7) if seed % 2 else (1.3, 0.4, 2.0)
    assert hd95(a, b, spacing) == pytest.approx(mb.hd95(a, b, voxelspacing=spacing), abs=1e-6)
    assert dice(a, b) == pytest.approx(mb.dc(a, b), abs=1e-6)


def test_empty_mask_policy():
    e = np.zeros((10, 10, 10), bool)
    m = cube((10, 10, 10), (2, 2, 2), (5, 5, 5))
    sp = (0.5, 0.5, 0.7)
    both = case_metrics(e, e, sp)
    assert both == {"dice": 1.0, "hd95_mm": 0.0, "precision": 1.0, "recall": 1.0, "pred_empty": True, "truth_empty": True}
    pred_empty = case_metrics(e, m, sp)
    assert pred_empty["dice"] == 0.0 and pred_empty["precision"] == 0.0 and pred_empty["recall"] == 0.0
    assert pred_empty["hd95_mm"] == pytest.approx(np.sqrt(2 * 4.5**2 + 6.3**2)) == empty_penalty(e.shape, sp)
    truth_empty = case_metrics(m, e, sp)
    assert truth_empty["dice"] == 0.0 and truth_empty["hd95_mm"] == empty_penalty(e.shape, sp)
    assert truth_empty["precision"] == 0.0 and truth_empty["recall"] == 0.0
    assert np.isfinite(pred_empty["hd95_mm"])  # never NaN: it stays in every mean


def test_spacing_must_match_dimensions():
    with pytest.raises(ValueError, match="spacing"):
        hd95(np.ones((3, 3, 3), bool), np.ones((3, 3, 3), bool), (1.0, 1.0))
