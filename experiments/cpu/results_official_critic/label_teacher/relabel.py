"""The screen behind gan.label_teacher: the shipped generator's images relabelled by a
U-net trained on the real training pairs. Do such labels teach more than the generator's?

    python experiments/cpu/results_official_critic/label_teacher/relabel.py OUT [--steps 1200] [--width 0.25]

Writes OUT/hard.npz (5,000 pairs of `vesselgan sample --model saved_models/vessel_pairs_icbm/4
--seed 1`), OUT/real5k.npz (the first 5,000 shuffled real training pairs) and
OUT/teacher_cal.npz (the same images as hard.npz, labelled by the teacher's probability
above the threshold at which their vessel fraction equals the real training patches'),
for benchmarks/screen_pairs.py. The teacher is training/snapshots.train_small_unet on all
16,000 real training pairs of out/oc/patches (seed 7).
"""
import argparse
import time
from pathlib import Path

import keras
import numpy as np

import tf_vesselgan  # noqa: F401  (TF environment defaults)
from tf_vesselgan.data.normalization import normalize
from tf_vesselgan.data.pipeline import labelled_patches
from tf_vesselgan.training.finalize import calibrate_threshold
from tf_vesselgan.training.sampling import pairs_from_export
from tf_vesselgan.training.snapshots import train_small_unet

EXPORT = Path("saved_models/vessel_pairs_icbm/4")


def teacher_labels(real_img, real_lab, image, width: float, steps: int, teacher_path: Path | None = None):
    """The teacher's labels of `image` (bool) and their threshold, at which their vessel
    fraction equals the real pairs'. The teacher (seed 7) is loaded from `teacher_path`
    when that exists, else trained and, given a path, saved there."""
    if teacher_path is not None and teacher_path.exists():
        teacher = keras.models.load_model(teacher_path, compile=False)
    else:
        t0 = time.process_time()
        teacher = train_small_unet(real_img, real_lab, width, steps, 3e-4, 7)
        print(f"teacher: {time.process_time() - t0:.0f} CPU-seconds", flush=True)
        if teacher_path is not None:
            teacher.save(teacher_path)
    prob = teacher.predict(normalize(image, "minmax")[..., None], batch_size=64, verbose=0)[..., 0]
    thr = calibrate_threshold(prob, float(real_lab.mean()))
    return prob > thr, thr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--patches", default="out/oc/patches")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--width", type=float, default=0.25)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    real_img, real_lab = labelled_patches(args.patches, 16000, "train", seed=1)
    np.savez(out / "real5k.npz", image=real_img[:5000], label=real_lab[:5000])
    image, label = pairs_from_export(EXPORT, 5000, 1)
    np.savez(out / "hard.npz", image=image, label=label)
    relabelled, thr = teacher_labels(real_img, real_lab, image, args.width, args.steps)
    np.savez(out / "teacher_cal.npz", image=image, label=relabelled.astype(np.uint8))
    agree = 2 * (relabelled & (label > 0)).sum() / (relabelled.sum() + label.sum())
    print(f"teacher threshold {thr:.4f}; Dice of its labels with the generator's: {agree:.4f}")


if __name__ == "__main__":
    main()
