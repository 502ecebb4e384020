"""A quick screen of synthetic pair sets: which teaches a small U-net more?

    python benchmarks/screen_pairs.py --patches out/oc/patches \
        --samples plain=out/oc/filter/plain --samples g2x=out/ttur/syn_g2x [--steps 600] [--seeds 1,2] \
        [--csv screen.csv]

For each pair set (a `vesselgan sample` folder or its samples.npz), trains a
width-1/4 U-net (Dice loss, learning rate 3e-4, batch 32, no augmentation, images min-max
scaled per patch) for `--steps` steps once per U-net seed, and scores Dice on
1,000 real patches of the validation patients at the probability thresholds 0.3/0.5/0.7/0.9
(the best one is reported; the test patients are not read). Prints one row per set and
seed and a mean per set, the same numbers written to `--csv`.

A screen, not the study's recipe (a width-1/2 U-net for 1,600 steps, scored on whole
held-out volumes): it ranks pair sets in minutes where a full U-net takes most of an hour.
Two U-net seeds on the same pairs differed by up to 0.05 on ICBM (README "Keeping the
pairs the discriminator rates most real").
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import tf_vesselgan  # noqa: F401  (TF environment defaults)

THRESHOLDS = (0.3, 0.5, 0.7, 0.9)


def train_and_score(image, label, real_x, real_lab, steps: int, seed: int) -> tuple[float, float]:
    """(best Dice over THRESHOLDS, its threshold) of a width-1/4 U-net trained `steps` steps
    (GAN-train's U-net, training/snapshots.py)."""
    from tf_vesselgan.evaluation.metrics import dice
    from tf_vesselgan.training.snapshots import train_small_unet

    model = train_small_unet(image, label, 0.25, steps, 3e-4, seed)
    prob = model.predict(real_x, batch_size=64, verbose=0)[..., 0]
    return max((dice(prob > t, real_lab), t) for t in THRESHOLDS)


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"wants integers separated by commas, got {text!r}") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"wants a positive integer, got {text!r}")
    return value


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patches", required=True, help="a `vesselgan patches` folder (its validation patches)")
    ap.add_argument("--samples", action="append", required=True, metavar="NAME=DIR",
                    help="a pair set to screen (repeatable)")
    ap.add_argument("--steps", type=_positive, default=600)
    ap.add_argument("--seeds", type=_seeds, default=[1, 2], help="U-net seeds, comma-separated (default 1,2)")
    ap.add_argument("--csv", help="also write the rows here")
    args = ap.parse_args(argv)
    sets = []
    for spec in args.samples:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            print(f"error: --samples wants NAME=DIR, got {spec!r}", file=sys.stderr)
            return 2
        sets.append((name, path))
    if args.csv and not Path(args.csv).resolve().parent.is_dir():
        print(f"error: --csv {args.csv}: no such folder for it", file=sys.stderr)
        return 2  # before the training, not after it

    import numpy as np

    from tf_vesselgan.data.normalization import normalize
    from tf_vesselgan.data.pipeline import labelled_patches
    from tf_vesselgan.errors import UserError
    from tf_vesselgan.training.sampling import load_samples

    try:
        pairs = [(name, *load_samples(path)) for name, path in sets]
        real_img, real_lab = labelled_patches(args.patches, 1000, "val", seed=1)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    real_x = normalize(real_img, "minmax")[..., None]
    rows = []
    for name, image, label in pairs:
        scores = []
        for seed in args.seeds:
            t0 = time.time()
            dice, thr = train_and_score(image, label, real_x, real_lab, args.steps, seed)
            scores.append(dice)
            row = {"set": name, "unet_seed": seed, "dice_best": round(dice, 4), "best_t": thr,
                   "label_fraction": round(float(label.mean()), 5), "pairs": len(image),
                   "seconds": round(time.time() - t0, 1)}
            rows.append(row)
            print(", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
        print(f"{name}: mean Dice {np.mean(scores):.4f} over U-net seeds {', '.join(map(str, args.seeds))}", flush=True)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
