"""Brightness of pair sets' images and of the pixels under their labels, on the per-patch
min-max scale U-nets see ([-1, 1]); the first 1,000 pairs of each set.

    python experiments/cpu/results_official_critic/label_teacher/image_statistics.py SET.npz [SET.npz ...]
"""
import sys

import numpy as np

import tf_vesselgan  # noqa: F401  (TF environment defaults)
from tf_vesselgan.data.normalization import normalize
from tf_vesselgan.training.sampling import load_samples


def main(paths) -> None:
    for path in paths:
        image, label = (a[:1000] for a in load_samples(path))
        x = np.asarray(normalize(image, "minmax"))
        q50, q90, q99 = np.quantile(x, [0.5, 0.9, 0.99])
        print(f"{path}: mean {x.mean():.3f}, under labels {x[label > 0].mean():.3f}, "
              f"quantiles 50/90/99 {q50:.3f}/{q90:.3f}/{q99:.3f}, per-pixel std across pairs {image.std(0).mean():.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
