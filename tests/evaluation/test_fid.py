"""Fréchet distance on closed-form Gaussians, KID against a NumPy reference, Inception offline."""
import numpy as np
import pytest

from tf_vesselgan.evaluation.fid import frechet_distance, inception_extractor, kid, mmd2_unbiased, statistics


def test_frechet_closed_form_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    # diagonal case: ‖Δμ‖² + Σ (√v1 − √v2)²
    expected = 5.0 + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-9)


def test_frechet_closed_form_scaled_covariance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    s = a @ a.T + np.eye(4)
    # Σ₂ = 4Σ₁ → tr(Σ + 4Σ − 2·2Σ) = tr(Σ)
    assert frechet_distance(np.zeros(4), s, np.zeros(4), 4 * s) == pytest.approx(np.trace(s), rel=1e-8)


def test_fid_of_a_set_with_itself_is_zero_and_statistics_are_float64():
    x = np.random.default_rng(1).normal(size=(500, 16)).astype(np.float32)
    mu, s = statistics(x)
    assert mu.dtype == np.float64 and s.shape == (16, 16)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-6


def test_kid_matches_numpy_loop_reference():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(20, 5)), rng.normal(0.5, 1, size=(25, 5))

    def k(x, y):
        return (x @ y / 5 + 1) ** 3

    xx = sum(k(a[i], a[j]) for i in range(20) for j in range(20) if i != j) / (20 * 19)
    yy = sum(k(b[i], b[j]) for i in range(25) for j in range(25) if i != j) / (25 * 24)
    xy = sum(k(a[i], b[j]) for i in range(20) for j in range(25)) / (20 * 25)
    assert mmd2_unbiased(a, b) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)
    same = rng.normal(size=(400, 5))
    assert abs(kid(same[:200], same[200:], subset_size=200, subsets=3)[0]) < 0.05
    assert kid(a, b + 2.0, subset_size=20, subsets=2)[0] > 0.5
    # subset size capped at half the smaller set: the subsets differ, so the sd is real
    assert kid(same[:200], same[200:], subset_size=1000, subsets=5)[1] > 0


def test_inception_path_with_random_weights_offline():
    extract = inception_extractor(weights=None)
    imgs = np.random.default_rng(0).uniform(-1, 1, size=(3, 96, 96)).astype(np.float32)
    f = extract(imgs)
    assert f.shape == (3, 2048) and f.dtype == np.float64 and np.isfinite(f).all()


def test_missing_weights_file_is_a_user_error(tmp_path):
    from tf_vesselgan.errors import UserError

    with pytest.raises(UserError, match="Inception weights"):
        inception_extractor(weights=str(tmp_path / "nope.h5"))
