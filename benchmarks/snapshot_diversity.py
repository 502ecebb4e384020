"""How diverse a GAN run's samples were over its training: per saved snapshot, the
per-pixel std across samples and the samples' mean correlation with each other.

    python benchmarks/snapshot_diversity.py --run out/cpu_da/gan_dcgan [--patches out/cpu_da/patches] [--n 256]

Both from the same fixed noise that `vesselgan train-gan` logs every epoch
(`collapse_std`, `sample_similarity` in history.csv); for runs from before the
similarity was logged, this recomputes it from `snapshots/`. With --patches, the same
two figures for n real training patches as the reference. A partial collapse (every
sample the same structure at a different brightness) keeps the std high and drives the
correlation towards 1.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import tf_vesselgan  # noqa: F401  (TF environment defaults)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, type=Path)
    ap.add_argument("--patches", type=Path)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    import keras

    from tf_vesselgan.data.pipeline import image_channels
    from tf_vesselgan.training.finalize import fixed_noise_images, sample_similarity
    from tf_vesselgan.training.snapshots import read_snapshots

    if args.patches is not None:
        real = image_channels(args.patches, args.n, seed=args.seed)
        print(f"real training patches (n = {len(real)}): per-pixel std {real.std(axis=0).mean():.3f}, "
              f"mean correlation {sample_similarity(real):.3f}")
    print(f"{'epoch':>6}{'machine-min':>13}{'pixel std':>11}{'correlation':>13}")
    for row in read_snapshots(args.run):
        gen = keras.models.load_model(str(args.run / row["file"]), compile=False)
        images = fixed_noise_images(gen, args.n, args.seed)
        print(f"{int(row['epoch']):>6}{float(row['machine_seconds']) / 60:>13.1f}{images.std(axis=0).mean():>11.3f}"
              f"{sample_similarity(images):>13.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
