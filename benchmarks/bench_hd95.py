"""hd95 on a real 320×320×247 label volume: tf_vesselgan vs MedPy, same pair, one run.

    python benchmarks/bench_hd95.py [--data ../shared/data/icbm-mra] [--case MNI_0590]

The prediction is the label shifted by one voxel along x and y with 5 % of its voxels
removed, a realistic near-miss; both implementations get identical inputs.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import nibabel as nib
import numpy as np

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "icbm-mra"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT))
    ap.add_argument("--case", default="MNI_0590")
    args = ap.parse_args()
    from medpy.metric.binary import hd95 as medpy_hd95

    from tf_vesselgan.evaluation.metrics import hd95

    img = nib.load(str(Path(args.data) / "labels" / f"{args.case}.nii.gz"))
    truth = np.asarray(img.dataobj) > 0
    spacing = tuple(float(z) for z in img.header.get_zooms()[:3])
    rng = np.random.default_rng(0)
    pred = np.roll(truth, (1, 1), axis=(0, 1)) & (rng.random(truth.shape) > 0.05)
    t0 = time.perf_counter()
    ours = hd95(pred, truth, spacing)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = medpy_hd95(pred, truth, voxelspacing=spacing)
    t_ref = time.perf_counter() - t0
    print(f"volume {truth.shape}, {truth.sum()} label voxels, spacing {spacing}")
    print(f"tf_vesselgan hd95 = {ours:.6f} mm in {t_ours:.3f} s")
    print(f"medpy        hd95 = {ref:.6f} mm in {t_ref:.3f} s")
    print(f"speed-up {t_ref / t_ours:.1f}x, |difference| = {abs(ours - ref):.2e} mm")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
