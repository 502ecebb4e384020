"""Where a U-net's false positives lie: at the border of a true vessel (within 1 voxel), near
one (within 2), far from any (beyond 5), or in predicted structures that hold no true vessel
voxel at all; per case of one or more `vesselgan evaluate` folders.

    python benchmarks/error_anatomy.py --data ../shared/data/icbm-mra \
        --eval "real=out/cpu_oc4x_signed/eval_real_test" \
        --eval "synthetic=out/cpu_oc4x_signed/eval_synthetic_dcgan_test"

A U-net that draws vessels a voxel too thick loses precision at the border; one that marks
bright structures the labels leave out loses it far away and in structures of its own.
Distances are in voxels of the label grid, chessboard metric (within 1 = one of a true
vessel voxel's 26 neighbours); components are 26-connected.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

from _labelled import labelled


def anatomy(truth: np.ndarray, pred: np.ndarray) -> dict:
    """Counts and false-positive shares of one case (boolean volumes of equal shape)."""
    tp, fp, fn = pred & truth, pred & ~truth, truth & ~pred
    dist = ndi.distance_transform_cdt(~truth, metric="chessboard")[fp]
    components, n = ndi.label(pred, structure=np.ones((3, 3, 3), bool))
    holds_truth = np.zeros(n + 1, bool)
    holds_truth[np.unique(components[tp])] = True
    holds_truth[0] = True  # background
    own = fp & ~holds_truth[components]
    total = max(int(fp.sum()), 1)
    return {"predicted": int(pred.sum()), "tp": int(tp.sum()), "fp": int(fp.sum()), "fn": int(fn.sum()),
            "precision": tp.sum() / max(pred.sum(), 1), "recall": tp.sum() / max(truth.sum(), 1),
            "fp_touching": int((dist <= 1).sum()), "fp_within_1": float((dist <= 1).sum() / total),
            "fp_within_2": float((dist <= 2).sum() / total),
            "fp_beyond_5": float((dist > 5).sum() / total), "fp_in_own_structures": float(own.sum() / total)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path, help="data folder with labels/ (the ground truth)")
    ap.add_argument("--eval", action="append", required=True, help="LABEL=FOLDER of `vesselgan evaluate`")
    args = ap.parse_args()
    folders = {}
    for label, folder in labelled(ap, "--eval", args.eval).items():
        cases = sorted(Path(folder).glob("*_segmentation.nii.gz"))
        if not cases:
            print(f"error_anatomy: error: {folder}: no *_segmentation.nii.gz (not an evaluate folder)", file=sys.stderr)
            return 2
        folders[label] = cases
    for cases in folders.values():
        for seg in cases:
            if not (args.data / "labels" / seg.name.replace("_segmentation", "")).is_file():
                print(f"error_anatomy: error: no label for {seg.name} under {args.data / 'labels'}", file=sys.stderr)
                return 2
    print(f"{'U-net':<14}{'case':<11}{'pred':>8}{'fp':>8}{'fp≤1 n':>8}{'fn':>8}{'prec':>6}{'rec':>6}"
          f"{'fp≤1':>7}{'fp≤2':>7}{'fp>5':>7}{'fp own':>8}")
    for label, cases in folders.items():
        for seg in cases:
            try:
                truth = np.asarray(nib.load(args.data / "labels" / seg.name.replace("_segmentation", "")).dataobj) > 0.5
                pred = np.asarray(nib.load(seg).dataobj) > 0.5
            except (OSError, ValueError, EOFError, nib.filebasedimages.ImageFileError) as exc:
                print(f"error_anatomy: error: {seg.name}: unreadable NIfTI ({exc})", file=sys.stderr)
                return 2
            if pred.shape != truth.shape:
                print(f"error_anatomy: error: {seg}: shape {pred.shape}, its label {truth.shape}", file=sys.stderr)
                return 2
            a = anatomy(truth, pred)
            case = seg.name.replace("_segmentation.nii.gz", "")
            print(f"{label:<14}{case:<11}{a['predicted']:>8}{a['fp']:>8}{a['fp_touching']:>8}{a['fn']:>8}"
                  f"{a['precision']:>6.2f}"
                  f"{a['recall']:>6.2f}{a['fp_within_1']:>7.2f}{a['fp_within_2']:>7.2f}{a['fp_beyond_5']:>7.2f}"
                  f"{a['fp_in_own_structures']:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
