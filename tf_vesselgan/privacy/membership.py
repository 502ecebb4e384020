"""Membership-inference scoring: ROC AUC with a bootstrap interval, TPR at low FPR.

An attack gives each candidate patch a score, higher meaning "was in the GAN's
training set". Evaluated on equal numbers of members (training-patient patches) and
non-members (patches of patients the GAN never saw): AUC 0.5 is chance, 1.0 is a
perfect attack (Hayes et al. 2019, LOGAN; Carlini et al. 2022 for TPR at low FPR).
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sklearn_roc_curve


def _labelled(member_scores, nonmember_scores) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(member_scores, np.float64)
    n = np.asarray(nonmember_scores, np.float64)
    if len(m) == 0 or len(n) == 0:
        raise ValueError("membership scores need at least one member and one non-member")
    return np.r_[np.ones(len(m)), np.zeros(len(n))], np.r_[m, n]


def roc_auc(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> float:
    """Area under the ROC curve = P(score_member > score_nonmember) + ½ P(tie) (scikit-learn's)."""
    return float(roc_auc_score(*_labelled(member_scores, nonmember_scores)))


def bootstrap_auc(member_scores, nonmember_scores, n_boot: int = 1000, seed: int = 0,
                  level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the AUC, members and non-members resampled separately."""
    rng = np.random.default_rng(seed)
    m = np.asarray(member_scores, np.float64)
    n = np.asarray(nonmember_scores, np.float64)
    aucs = np.empty(n_boot)
    for b in range(n_boot):
        aucs[b] = roc_auc(m[rng.integers(0, len(m), len(m))], n[rng.integers(0, len(n), len(n))])
    lo, hi = np.quantile(aucs, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def tpr_at_fpr(member_scores, nonmember_scores, fpr: float = 0.01) -> float:
    """Largest true-positive rate over thresholds whose false-positive rate is ≤ `fpr`.

    A patch is called a member when its score is strictly above the threshold.
    """
    m = np.asarray(member_scores, np.float64)
    n = np.sort(np.asarray(nonmember_scores, np.float64))[::-1]
    allowed = int(np.floor(fpr * len(n)))  # non-members that may score above the threshold
    threshold = n[allowed] if allowed < len(n) else -np.inf
    return float(np.mean(m > threshold))


def roc_curve(member_scores, nonmember_scores) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) at every distinct threshold, from (0, 0) to (1, 1) (scikit-learn's)."""
    fpr, tpr, _ = sklearn_roc_curve(*_labelled(member_scores, nonmember_scores), drop_intermediate=False)
    return fpr, tpr


def summarize(member_scores, nonmember_scores, n_boot: int = 1000, seed: int = 0) -> dict:
    lo, hi = bootstrap_auc(member_scores, nonmember_scores, n_boot, seed)
    return {"auc": roc_auc(member_scores, nonmember_scores), "auc_ci95": [lo, hi],
            "tpr_at_1pct_fpr": tpr_at_fpr(member_scores, nonmember_scores, 0.01),
            "n_members": int(len(member_scores)), "n_nonmembers": int(len(nonmember_scores))}
