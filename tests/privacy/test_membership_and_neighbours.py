"""Nearest neighbours against brute force; AUC / TPR at FPR against scikit-learn."""
import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics import roc_auc_score, roc_curve as sk_roc_curve

from tf_vesselgan.privacy.membership import bootstrap_auc, roc_auc, roc_curve, tpr_at_fpr
from tf_vesselgan.privacy.neighbours import nearest


def test_nearest_matches_brute_force_and_copies_are_at_zero():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(300, 50)).astype(np.float32)
    q = rng.normal(size=(120, 50)).astype(np.float32)
    q[:5] = ref[[7, 8, 9, 100, 299]]  # planted exact copies
    idx, d = nearest(q, ref, chunk=17)
    full = cdist(q.astype(np.float64), ref.astype(np.float64))
    np.testing.assert_array_equal(idx, full.argmin(1))
    np.testing.assert_allclose(d, full.min(1), rtol=1e-9, atol=1e-9)
    assert list(idx[:5]) == [7, 8, 9, 100, 299] and np.all(d[:5] == 0)


def test_nearest_excluding_self():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 10)).astype(np.float32)
    idx, d = nearest(x, x, chunk=13, exclude_self=True)
    full = cdist(x, x)
    np.fill_diagonal(full, np.inf)
    np.testing.assert_array_equal(idx, full.argmin(1))
    assert np.all(idx != np.arange(80))


def test_auc_equals_sklearn_with_ties():
    rng = np.random.default_rng(2)
    m = rng.integers(0, 6, 200).astype(float) + 0.5
    n = rng.integers(0, 6, 150).astype(float)
    y = np.r_[np.ones(200), np.zeros(150)]
    assert roc_auc(m, n) == pytest.approx(roc_auc_score(y, np.r_[m, n]), abs=1e-12)
    assert roc_auc(np.ones(5), np.zeros(5)) == 1.0
    assert roc_auc(np.zeros(5), np.zeros(5)) == 0.5


def test_tpr_at_low_fpr_and_roc_curve_equal_sklearn():
    rng = np.random.default_rng(3)
    m, n = rng.normal(1.0, 1, 1000), rng.normal(0, 1, 1000)
    y = np.r_[np.ones(1000), np.zeros(1000)]
    fpr, tpr, _ = sk_roc_curve(y, np.r_[m, n])
    assert tpr_at_fpr(m, n, 0.01) == pytest.approx(tpr[fpr <= 0.01].max())
    assert tpr_at_fpr(m, n, 0.10) == pytest.approx(tpr[fpr <= 0.10].max())
    f2, t2 = roc_curve(m, n)
    assert np.trapezoid(t2, f2) == pytest.approx(roc_auc(m, n), abs=1e-9)


def test_bootstrap_interval_covers_and_shrinks():
    rng = np.random.default_rng(4)
    small = bootstrap_auc(rng.normal(0.5, 1, 100), rng.normal(0, 1, 100), n_boot=300)
    big_m, big_n = rng.normal(0.5, 1, 2000), rng.normal(0, 1, 2000)
    big = bootstrap_auc(big_m, big_n, n_boot=300)
    assert big[0] < roc_auc(big_m, big_n) < big[1]
    assert big[1] - big[0] < (small[1] - small[0]) / 2
