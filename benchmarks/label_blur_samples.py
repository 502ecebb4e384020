"""Synthetic pairs of a finished GAN run with `gan.label_blur` applied after the fact.

    python benchmarks/label_blur_samples.py --run out/cpu3/gan_dcgan --patches out/cpu3/patches \
        --sigma 0.6 --n 5000 --seed 1 --out out/blur/samples_dcgan_s06

The run's sampling generator (generator.keras) followed by the label blur, its threshold
calibrated to the real training patches' vessel fraction as `label_threshold: auto`
does; written like `vesselgan sample` (samples.npz + samples.json), ready for
`vesselgan train-unet --train synthetic --samples ...`. Prints the threshold.
"""
from __future__ import annotations

import argparse

import tf_vesselgan  # noqa: F401  (TF environment defaults)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--patches", required=True)
    ap.add_argument("--sigma", type=float, required=True)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    import keras

    from tf_vesselgan.training.finalize import (calibrate_threshold, label_channel, real_label_fraction,
                                                with_label_blur)
    from tf_vesselgan.training.sampling import write_samples

    gen = with_label_blur(keras.models.load_model(f"{args.run}/generator.keras", compile=False), args.sigma)
    thr = calibrate_threshold(label_channel(gen, seed=args.seed), real_label_fraction(args.patches))
    write_samples(gen, args.n, args.out, seed=args.seed, threshold=thr, overwrite=True,
                  meta={"label_blur": args.sigma, "source": args.run})
    print(f"label_blur {args.sigma:g}: threshold {thr:.4f} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
