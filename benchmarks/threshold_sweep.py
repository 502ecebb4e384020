"""Dice of a trained U-net's segmentation at probability thresholds beyond the tuning grid,
per patient of a split (each volume segmented once, then thresholded).

    python benchmarks/threshold_sweep.py --run out/cpu_oc30/unet_synthetic_dcgan \\
        --data ../shared/data/icbm-mra --cases val

    python benchmarks/threshold_sweep.py --run out/demo256/unet_synthetic_dcgan \\
        --data out/demo256/phantom --cases test --thresholds 0.01,0.1,0.3,0.5

Shows whether the tuned threshold (THRESHOLD_GRID in evaluation/evaluate.py) sits at the
grid's top and what a finer or higher grid would give; choose on validation patients only.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import tf_vesselgan  # noqa: F401  (TF environment defaults)

THRESHOLDS = (0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999)


def _thresholds(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not all(0 < t < 1 for t in values):
        raise argparse.ArgumentTypeError(f"thresholds must lie in (0, 1), got {text!r}")
    return values


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, type=Path, help="U-net run folder")
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--cases", default="val", help="val|test|train|all|ID,ID,...")
    ap.add_argument("--thresholds", type=_thresholds, default=THRESHOLDS,
                    help="comma-separated probabilities in (0, 1) (default: %(default)s)")
    args = ap.parse_args()
    from tf_vesselgan.data.nifti import discover_cases
    from tf_vesselgan.errors import UserError
    from tf_vesselgan.evaluation.evaluate import select_cases, threshold_dice
    from tf_vesselgan.training.run_folder import load_run_config
    from tf_vesselgan.training.unet_trainer import load_unet

    try:
        model, status = load_unet(args.run)
        cfg = load_run_config(args.run)
        by_id = {c.case_id: c for c in discover_cases(args.data)[0]}
        ids = select_cases(args.cases, status, list(by_id))
    except UserError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"{'case':<12}" + "".join(f"{t:>9}" for t in args.thresholds) + f"   (tuned: {status.get('tuned_threshold')})")
    for cid in ids:
        scores = threshold_dice(model, status, cfg, by_id[cid], args.thresholds)
        print(f"{cid:<12}" + "".join(f"{d:>9.3f}" for d in scores))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
