"""How the labels of synthetic pairs differ from real ones, and what a label blur changes.

    python benchmarks/label_statistics.py --patches out/cpu3/patches \
        --run out/cpu3/gan_dcgan [--run out/cpu3/gan_wgan-gp ...] [--blur 0.5,0.75,1] [--n 1000]

For the real training patches and for n samples of each run's sampling generator
(generator.keras, its run's threshold; with --blur also the same generator followed by
the `gan.label_blur` blur, threshold recalibrated to the real vessel fraction): vessel
fraction, share of patches with a vessel, labelled pixels' image intensity (mean and
10th percentile; real vessels are the brightest pixels of a min–max scaled patch),
connected label components per 100 patches and their median size, the share of thin
components (largest inscribed radius ≤ 1 pixel), the share of labelled pixels darker than
the real floor (the 1st percentile of real vessel pixels, each patch min–max scaled to
[0, 1]: `gan.label_min_intensity: auto`), and the Dice of the best global image threshold
with the patch's own labels (how far "bright = vessel" explains them).
"""
from __future__ import annotations

import argparse

import tf_vesselgan  # noqa: F401  (TF environment defaults)


def label_stats(image, label, floor: float) -> dict:
    import numpy as np
    from scipy import ndimage

    from tf_vesselgan.data.normalization import normalize

    label = label.astype(bool)
    sizes, radii = [], []
    for lab in label:
        cc, n = ndimage.label(lab)
        if n:
            idx = range(1, n + 1)
            sizes += list(ndimage.sum(lab, cc, idx))
            radii += list(ndimage.maximum(ndimage.distance_transform_edt(lab), cc, idx))
    inside = image[label] if label.any() else np.zeros(1)
    scaled = (normalize(image, "minmax") + 1.0) / 2.0
    best = 0.0
    for q in np.quantile(image, [0.99, 0.993, 0.995, 0.997, 0.998, 0.999]):
        pred = image > q
        best = max(best, 2 * float((pred & label).sum()) / max(float(pred.sum() + label.sum()), 1.0))
    return {"fraction": float(label.mean()), "with_vessel": float(label.any(axis=(1, 2)).mean()),
            "intensity": float(inside.mean()), "intensity_p10": float(np.quantile(inside, 0.1)),
            "components_per_100": 100 * len(sizes) / len(label), "median_size": float(np.median(sizes or [0])),
            "thin": float(np.mean(np.array(radii) <= 1)) if radii else float("nan"),
            "under_real_floor": float((scaled[label] < floor).mean()) if label.any() else float("nan"),
            "threshold_dice": best}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patches", required=True)
    ap.add_argument("--run", action="append", required=True)
    ap.add_argument("--blur", default="", help="comma-separated label_blur sigmas (pixels) to compare")
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args()
    import keras
    import numpy as np

    from tf_vesselgan.data.pipeline import labelled_patches
    from tf_vesselgan.training.finalize import (calibrate_threshold, label_channel, real_label_floor,
                                                real_label_fraction, with_label_blur)
    from tf_vesselgan.training.run_folder import read_status
    from tf_vesselgan.training.sampling import generate

    images, labels = labelled_patches(args.patches, args.n, seed=0)
    floor = real_label_floor(args.patches)
    print(f"real floor (1st percentile of vessel pixels, patch min-max scale): {floor:.3f}")
    rows = [("real training patches", label_stats(images, labels, floor))]
    fraction = real_label_fraction(args.patches)
    for run in args.run:
        gen = keras.models.load_model(f"{run}/generator.keras", compile=False)
        thr = float(read_status(run)["label_threshold"])
        pairs = list(generate(gen, args.n, seed=1, threshold=thr))
        rows.append((run, label_stats(np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs]),
                                      floor)))
        for sigma in [float(s) for s in args.blur.split(",") if s]:
            blurred = with_label_blur(gen, sigma)
            t = calibrate_threshold(label_channel(blurred, seed=0), fraction)  # as finalize_generator does
            pairs = list(generate(blurred, args.n, seed=1, threshold=t))
            rows.append((f"{run} + label_blur {sigma:g}",
                         label_stats(np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs]),
                                     floor)))
    keys = list(rows[0][1])
    print("| pairs | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, s in rows:
        print(f"| {name} | " + " | ".join(f"{s[k]:.4f}" if s[k] < 1 else f"{s[k]:.1f}" for k in keys) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
