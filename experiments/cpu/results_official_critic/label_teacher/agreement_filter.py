"""Keep the shipped generator's own labels, but only on the pairs a U-net of the real data
agrees with: do pairs whose label matches their image teach more than unfiltered ones?

    python experiments/cpu/results_official_critic/label_teacher/agreement_filter.py OUT \
        [--draw 20000] [--keep 5000] [--steps 1200] [--width 0.25]

Draws `--draw` pairs from `saved_models/vessel_pairs_icbm/4` (seed 1), labels their images
with the teacher of relabel.py (training/snapshots.train_small_unet on all 16,000 real
training pairs of out/oc/patches, seed 7, probability above the threshold at which the
vessel fraction equals the real training patches'), and writes OUT/filtered.npz: `--keep`
pairs with the generator's labels: from each stratum of the draw (empty labels, and ten
quantile bins of label size) the same share, its pairs whose labels agree best with the
teacher's (Dice; for empty labels, the fewest teacher vessel pixels). An existing
OUT/teacher.keras is reused.
OUT/unfiltered.npz holds the first `--keep` pairs of the same draw, OUT/scores.csv the
per-pair scores.
"""
import argparse
from pathlib import Path

import numpy as np

from tf_vesselgan.data.pipeline import labelled_patches
from tf_vesselgan.training.sampling import pairs_from_export

from relabel import EXPORT, teacher_labels  # this folder's teacher recipe (run as a script)


def select(gen: np.ndarray, teacher: np.ndarray, keep: int, strata: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the `keep` kept pairs (sorted) and every pair's score: the Dice of its
    label with the teacher's, or for an empty label minus the teacher's vessel pixels.

    The same share is kept of every stratum (empty labels, then `strata` quantile bins of
    the generator's label size), the best-scored pairs in each, so the filter changes
    which pairs are kept but not how much vessel they hold."""
    g = gen.reshape(len(gen), -1) > 0
    t = teacher.reshape(len(teacher), -1) > 0
    size = g.sum(1)
    score = np.where(size == 0, -t.sum(1).astype(float), 2 * (g & t).sum(1) / np.maximum(size + t.sum(1), 1))
    edges = np.quantile(size[size > 0], np.linspace(0, 1, strata + 1)[1:-1]) if (size > 0).any() else []
    stratum = np.where(size == 0, -1, np.searchsorted(edges, size, side="right"))
    kept = []
    for s in np.unique(stratum):
        members = np.flatnonzero(stratum == s)
        n = int(round(keep * len(members) / len(gen)))
        kept.append(members[np.argsort(-score[members], kind="stable")][:n])
    return np.sort(np.concatenate(kept)), score


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--patches", default="out/oc/patches")
    ap.add_argument("--draw", type=int, default=20000)
    ap.add_argument("--keep", type=int, default=5000)
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--width", type=float, default=0.25)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    real_img, real_lab = labelled_patches(args.patches, 16000, "train", seed=1)
    fraction = float(real_lab.mean())
    image, label = pairs_from_export(EXPORT, args.draw, 1)
    teacher, thr = teacher_labels(real_img, real_lab, image, args.width, args.steps, out / "teacher.keras")
    kept, score = select(label, teacher, args.keep)
    np.savez(out / "filtered.npz", image=image[kept], label=label[kept])
    np.savez(out / "unfiltered.npz", image=image[:args.keep], label=label[:args.keep])
    labelled = label.reshape(len(label), -1).max(1) > 0
    chosen = np.isin(np.arange(len(score)), kept)
    np.savetxt(out / "scores.csv", np.stack([np.arange(len(score)), labelled, score, chosen], 1),
               fmt=["%d", "%d", "%.5f", "%d"], delimiter=",", header="pair,labelled,score,kept", comments="")
    print(f"teacher threshold {thr:.4f}; {labelled.mean():.3f} of the draw labelled; median Dice with the "
          f"teacher of labelled pairs: kept {np.median(score[chosen & labelled]):.3f}, left out "
          f"{np.median(score[~chosen & labelled]):.3f}, all {np.median(score[labelled]):.3f}; vessel fraction "
          f"kept {label[kept].mean():.5f}, draw {label.mean():.5f}, real {fraction:.5f}")


if __name__ == "__main__":
    main()
