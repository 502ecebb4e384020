"""privacy.md and its figures: distance histograms, closest pairs, ROC curves."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tf_vesselgan.privacy.membership import roc_curve


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def distance_histograms(path: Path, result: dict) -> None:
    plt = _plt()
    spaces = result["memorisation"]
    fig, axes = plt.subplots(1, len(spaces), figsize=(6 * len(spaces), 4), squeeze=False)
    for ax, (name, m) in zip(axes[0], spaces.items()):
        bins = np.histogram_bin_edges(np.concatenate([m["_d_train"], m["_d_null"]]), 40)
        ax.hist(m["_d_null"], bins, alpha=0.5, density=True, label="unseen patient's patch → closest training patch")
        ax.hist(m["_d_train"], bins, alpha=0.5, density=True, label="synthetic sample → closest training patch")
        ax.axvline(m["threshold"], color="k", ls="--", lw=1, label=f"{result['settings']['null_percentile']:g}th percentile of unseen")
        ax.set_xlabel(f"Euclidean distance ({name})")
        ax.set_ylabel("density")
        ax.set_title(f"{name}: {m['memorised_fraction']:.1%} of samples below the line")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def closest_pairs(path: Path, result: dict, train, synthetic, k: int = 8) -> None:
    """The k samples closest to a training patch (pixel space), each above its neighbour."""
    from tf_vesselgan.utils.grids import pair_grid

    plt = _plt()
    m = result["memorisation"]["pixel"]
    order = np.argsort(m["_d_train"])[:k]
    pairs = np.concatenate([synthetic[order], train[m["_nearest_train"][order]]])
    grid = pair_grid(pairs, columns=len(order))
    fig, ax = plt.subplots(figsize=(1.6 * len(order), 3.6))
    ax.imshow(grid)
    ax.set_xticks([(i + 0.5) * synthetic.shape[2] for i in range(len(order))])
    ax.set_xticklabels([f"d={m['_d_train'][i]:.1f}" for i in order], fontsize=7)
    ax.set_yticks([synthetic.shape[1] / 2, synthetic.shape[1] * 1.5])
    ax.set_yticklabels(["synthetic", "closest\ntraining"], fontsize=8)
    ax.set_title("closest synthetic–training pairs (label in red); review for copies", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def roc_figure(path: Path, result: dict) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for name, a in result["membership"].items():
        fpr, tpr = roc_curve(*a["_scores"])
        ax.plot(fpr, tpr, label=f"{name}: AUC {a['auc']:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="chance")
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlabel("false-positive rate (non-members called members)")
    ax.set_ylabel("true-positive rate")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def dp_line(dp) -> str:
    if not isinstance(dp, dict):
        return ("Differential privacy: none (the generator was not trained with DP-SGD; the checks below are "
                "empirical, not a guarantee).")
    return (f"Differential privacy: the critic was trained with DP-SGD, so the generator is "
            f"(ε = {dp['epsilon']:.3g}, δ = {dp['delta']:g})-DP with respect to the training patches "
            f"(noise multiplier {dp['noise_multiplier']:g}, clip {dp['l2_clip']:g}, Poisson sampling q = "
            f"{dp['sampling_probability']:.4g}, {dp['critic_updates']} critic updates; {dp['accountant']}).")


def markdown(result: dict) -> str:
    s = result["settings"]
    failed = result["verdict"]
    lines = [f"# Privacy audit: {s['arch']} (width {s['width']})", "",
             f"Run `{s['run']}`, patches `{s['patches']}`, {s['n_samples']} synthetic samples "
             f"({'from ' + s['samples'] if s['samples'] else 'generated with seed ' + str(s['seed'])}); "
             f"non-members: the {' and '.join(s['holdout_splits'])} patients. Took {result['seconds']:.1f} s.", "",
             f"**Verdict: {'FAIL' if failed else 'PASS'}**" + ("" if failed else " — no check exceeded its limit."), "",
             dp_line(s.get("differential_privacy", "not DP")), ""]
    lines += [f"- {r}" for r in failed] + ([""] if failed else [])
    lines += ["## Memorisation (distance to closest record, exact nearest neighbours)", "",
              f"Threshold: the {s['null_percentile']:g}th percentile of the distances from unseen patients' patches "
              "to their closest training patch; without copying about "
              f"{s['null_percentile'] / 100:.0%} of samples fall below it (limit {s['max_memorised']:.0%}, on the "
              "measured fraction; its 95% Wilson interval shows how far sampling alone moves it).", "",
              "| space | samples | training patches | held-out patches | threshold | below threshold (95% CI) "
              "| exact copies "
              "| median sample→training | median sample→training, size-matched | median sample→held-out "
              "| median held-out→training |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in result["memorisation"].items():
        lines.append(f"| {name} | {m['n_synthetic']} | {m['n_train']} | {m['n_holdout']} | {m['threshold']:.3f} | "
                     f"{m['memorised_fraction']:.1%} ({m['memorised_ci95'][0]:.1%}–{m['memorised_ci95'][1]:.1%}) | "
                     f"{m['exact_copies']} | {m['median_to_train']:.3f} | {m['median_to_train_matched']:.3f} | "
                     f"{m['median_to_holdout']:.3f} | {m['median_holdout_to_train']:.3f} |")
    lines += ["", "Size-matched: to a random subset of the training patches as large as the held-out set, so it "
              "compares with sample→held-out like for like (a larger reference set has closer nearest neighbours)."]
    lines += ["", "![distances](dcr_hist.png)", "", "![closest pairs](closest_pairs.png)", "",
              "## Membership inference", "",
              "Equal numbers of training-patient (member) and unseen-patient (non-member) patches; "
              f"AUC 0.5 = the attacker does no better than chance (limit: lower 95% bound ≤ {s['max_auc']}).", "",
              "| attack | members | non-members | ROC AUC | 95% CI (bootstrap) | TPR at 1% FPR |", "|---|---|---|---|---|---|"]
    for name, a in result["membership"].items():
        lo, hi = a["auc_ci95"]
        lines.append(f"| {name} | {a['n_members']} | {a['n_nonmembers']} | {a['auc']:.3f} | {lo:.3f}–{hi:.3f} | "
                     f"{a['tpr_at_1pct_fpr']:.1%} |")
    chk = result["identifier_check"]
    lines += ["", "![ROC](roc.png)", "", "## Identifiers", "",
              f"Searched {len(chk['scanned'])} handed-out files/folders for {chk['strings']} source strings (case ids, "
              f"file names, data path) and {chk['affines']} source affines.", ""]
    if chk["short_ids_not_checked"]:
        lines.append(f"Case ids too short to search for reliably: {', '.join(chk['short_ids_not_checked'])}.")
    if result["identifiers"]:
        lines += ["| file | kind | detail |", "|---|---|---|"]
        lines += [f"| {f['file']} | {f['kind']} | {f['detail']} |" for f in result["identifiers"]]
    else:
        lines.append("No findings in: " + ", ".join(f"`{p}`" for p in chk["scanned"]) + ".")
    return "\n".join(lines) + "\n"


def write_report(folder: Path, result: dict, train, synthetic) -> None:
    folder = Path(folder)
    distance_histograms(folder / "dcr_hist.png", result)
    closest_pairs(folder / "closest_pairs.png", result, train, synthetic)
    roc_figure(folder / "roc.png", result)
    (folder / "privacy.md").write_text(markdown(result))
