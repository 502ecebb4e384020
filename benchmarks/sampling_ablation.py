"""What each sampling setting is worth, on one trained GAN checkpoint (no retraining).

    python benchmarks/sampling_ablation.py --run out/cpu/gan_wgan-gp-sn --patches out/cpu/patches \
        --features unet:out/cpu/unet_real [--n 1000]

From the run's latest checkpoint: the last generator or its weight average (EMA), with
Keras' moving batch-norm statistics or recalibrated ones; for each, FID to the real
training patches in the real U-net's encoder features, the per-pixel std across samples
(collapse check; real patches for reference) and the vessel fraction of the labels at
the fixed 0.8 threshold and at the calibrated one, next to the real fraction.
"""
from __future__ import annotations

import argparse

import tf_vesselgan  # noqa: F401  (TF environment defaults)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--patches", required=True)
    ap.add_argument("--features", required=True, help="unet:RUN (a U-net trained with minmax inputs)")
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args()
    import numpy as np
    import tensorflow as tf

    from tf_vesselgan.data.pipeline import image_channels
    from tf_vesselgan.evaluation.fid import frechet_distance, statistics, unet_extractor
    from tf_vesselgan.models.generator import build_generator
    from tf_vesselgan.training.finalize import calibrate_threshold, label_channel, real_label_fraction, sampling_copy
    from tf_vesselgan.training.run_folder import load_run_config, read_status

    cfg = load_run_config(args.run)
    g = cfg.gan
    latest = tf.train.latest_checkpoint(f"{args.run}/checkpoints")
    status = read_status(args.run)
    real_fraction = status.get("real_label_fraction") or real_label_fraction(args.patches)
    extract = unet_extractor(args.features[5:])
    real = image_channels(args.patches, args.n, seed=cfg.seed)
    real_stats = statistics(extract(real))
    print(f"run {args.run}: {g.arch}, width {g.width:g}, checkpoint {latest.split('/')[-1]}, "
          f"{status.get('machine_seconds', float('nan')) / 60:.1f} machine-minutes; n = {args.n}")
    print(f"real training patches: per-pixel std {real.std(axis=0).mean():.3f}, vessel fraction {real_fraction:.4f}")
    print(f"{'weights':<10}{'batch norm':<14}{'FID':>9}{'pixel std':>11}{'frac@0.8':>10}{'calibrated t':>14}{'frac@t':>9}")
    z = tf.random.stateless_normal([args.n, g.latent_dim], seed=[cfg.seed, 11])
    for key in ("generator", "ema_generator"):
        gen = build_generator(g.latent_dim, g.width, 96, upsample=g.upsample)
        status_ckpt = tf.train.Checkpoint(**{key: gen}).restore(latest).expect_partial()
        try:
            status_ckpt.assert_existing_objects_matched()
        except AssertionError:
            continue  # no weight average in this run
        for bn in ("moving", "recalibrate"):
            model = sampling_copy(gen, cfg.seed, recalibrate=bn == "recalibrate")
            pairs = np.concatenate([model(z[i:i + 256], training=False).numpy() for i in range(0, args.n, 256)])
            fid = frechet_distance(*real_stats, *statistics(extract(pairs[..., 0])))
            labels = label_channel(model, seed=cfg.seed)
            t = calibrate_threshold(labels, real_fraction)
            name = "EMA" if key == "ema_generator" else "last"
            print(f"{name:<10}{bn:<14}{fid:>9.2f}{pairs[..., 0].std(axis=0).mean():>11.3f}"
                  f"{(pairs[..., 1] > 0.8).mean():>10.5f}{t:>14.3f}{(pairs[..., 1] > t).mean():>9.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
