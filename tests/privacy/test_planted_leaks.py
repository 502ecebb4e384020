"""The audit must flag a "generator" that copies training patches and pass one that
returns patches of patients it never saw."""
import numpy as np
import pytest

from tf_vesselgan.privacy.audit import audit_arrays, critic_attack, verdict, wilson_interval


def patient_patches(n, seed, size=32):
    """i.i.d. pairs: a bright disc (label inside) on noise, image in [-1, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.empty((n, size, size, 2), np.float32)
    for i in range(n):
        cy, cx, r = rng.uniform(8, size - 8, 2).tolist() + [rng.uniform(3, 7)]
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        out[i, ..., 0] = np.clip(np.where(disc, 0.6, -0.6) + rng.normal(0, 0.2, (size, size)), -1, 1)
        out[i, ..., 1] = disc
    return out


@pytest.fixture(scope="module")
def cohorts():
    return {"train": patient_patches(400, 0), "holdout": patient_patches(400, 1), "unseen": patient_patches(400, 2)}


def test_a_generator_returning_training_patches_is_flagged(cohorts):
    train, holdout = cohorts["train"], cohorts["holdout"]
    copies = train[np.random.default_rng(5).permutation(len(train))]
    r = audit_arrays(train, holdout, copies, n_attack=300, n_boot=200)
    mem = r["memorisation"]["pixel"]
    assert mem["memorised_fraction"] > 0.99
    assert mem["exact_copies"] == len(train)
    attack = r["membership"]["distance to closest sample (black box)"]
    assert attack["auc"] > 0.99 and attack["tpr_at_1pct_fpr"] > 0.99
    assert len(verdict(r, 0.10, 0.60)) >= 3


def test_a_generator_returning_unseen_patients_patches_passes(cohorts):
    r = audit_arrays(cohorts["train"], cohorts["holdout"], cohorts["unseen"], n_attack=300, n_boot=200)
    mem = r["memorisation"]["pixel"]
    assert mem["memorised_fraction"] < 0.10 and mem["exact_copies"] == 0
    lo, hi = mem["memorised_ci95"]
    assert 0.0 < lo < mem["memorised_fraction"] < hi < 0.15
    attack = r["membership"]["distance to closest sample (black box)"]
    assert 0.4 < attack["auc"] < 0.6
    assert verdict(r, 0.10, 0.60) == []


def test_critic_attack_keeps_scores_aligned_with_patches(cohorts):
    """A critic that recognises training patches exactly gives AUC 1 (scores are not
    shuffled away from their patches by the mixed batches)."""
    train, holdout = cohorts["train"][:100], cohorts["holdout"][:100]
    keys = {p.tobytes() for p in train}

    def critic(x, training=False):
        return [np.array([[1.0 if p.tobytes() in keys else 0.0] for p in np.asarray(x)]), None]

    m, n = critic_attack(critic, train, holdout, batch=7)
    assert np.all(m == 1.0) and np.all(n == 0.0)


def test_feature_space_is_audited_too(cohorts):
    def features(images):  # a crude 2-d "encoder": mean and spread of the image
        return np.stack([images.mean(axis=(1, 2)), images.std(axis=(1, 2))], axis=1)

    r = audit_arrays(cohorts["train"], cohorts["holdout"], cohorts["train"][:50], feature_fn=features,
                     n_attack=100, n_boot=50)
    assert set(r["memorisation"]) == {"pixel", "unet features"}
    assert r["memorisation"]["unet features"]["memorised_fraction"] == 1.0


def test_the_memorised_fraction_carries_its_wilson_interval():
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    lo, hi = wilson_interval(208, 2000)  # 10.4 % of 2,000 samples: the limit of 10 % lies inside
    assert lo < 0.10 < hi and hi - lo == pytest.approx(0.027, abs=0.001)


def test_sample_to_training_median_is_also_measured_against_a_set_as_large_as_the_held_out_one():
    """Samples from the patients' distribution, a training set 4x the held-out set: the raw
    medians differ only because the larger set has closer neighbours; the size-matched ones
    agree."""
    train, holdout = patient_patches(1600, 10), patient_patches(400, 11)
    r = audit_arrays(train, holdout, patient_patches(300, 12), n_attack=100, n_boot=20)
    m = r["memorisation"]["pixel"]
    assert m["n_train_matched"] == 400
    assert m["median_to_train"] < 0.97 * m["median_to_holdout"]
    assert m["median_to_train_matched"] == pytest.approx(m["median_to_holdout"], rel=0.015)
    same = audit_arrays(holdout, holdout, patient_patches(300, 12), n_attack=100, n_boot=20)["memorisation"]["pixel"]
    assert same["median_to_train_matched"] == same["median_to_train"]
