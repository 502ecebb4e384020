"""U-net recipes side by side in one run: training step time and whole-volume inference.

    python benchmarks/bench_unet_recipe.py [--volume ../shared/data/icbm-mra/images/MNI_0648.nii.gz]
        [--steps 10] [--recipes old new new_tta wide]

Per recipe: seconds per training step (batch 32 of 96x96 patches, median after a warm-up),
GFLOP/s of that step (forward FLOPs of every convolution x 3 for forward + backward),
and the seconds to segment one volume with the recipe's inference options (tiles of 96,
stride 48, inside the automatic head mask). Without --volume a random 320x320x247
volume is used (the mask is then the whole volume). Ratios to the first recipe.
"""
from __future__ import annotations

import argparse
import time

RECIPES = {  # name: (width, loss, tile weighting, flip TTA)
    "old": (0.25, "dice", "uniform", False),
    "new": (0.25, "dice_bce", "gaussian", False),
    "new_tta": (0.25, "dice_bce", "gaussian", True),
    "wide": (0.5, "dice_bce", "gaussian", False),
}


def conv_gflop_per_sample(model, size: int) -> float:
    """2·H·W·k²·C_in·C_out per convolution, at the resolution each one runs at."""
    import keras

    probe = keras.Model(model.input, [layer.output for layer in model.layers
                                      if type(layer).__name__ in ("Conv2D", "Conv2DTranspose")])
    convs = [layer for layer in model.layers if type(layer).__name__ in ("Conv2D", "Conv2DTranspose")]
    import numpy as np

    outs = probe(np.zeros((1, size, size, 1), np.float32))
    total = 0
    for layer, out in zip(convs, outs):
        _, h, w, cout = out.shape
        kh, kw = layer.kernel_size
        cin = layer.input.shape[-1]
        total += 2 * h * w * kh * kw * cin * cout
    return total / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--volume", help="a NIfTI image to segment (default: random 320x320x247)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--recipes", nargs="+", default=["old", "new", "new_tta"], choices=sorted(RECIPES))
    args = ap.parse_args()

    import tf_vesselgan  # noqa: F401  (oneDNN on)
    import numpy as np
    import tensorflow as tf

    from tf_vesselgan.evaluation.inference import segment_volume
    from tf_vesselgan.models.unet import build_unet
    from tf_vesselgan.training.unet_trainer import compile_unet

    if args.volume:
        import nibabel as nib

        from tf_vesselgan.data.patches import auto_brain_mask

        image = np.asarray(nib.load(args.volume).dataobj, np.float32)
        mask = auto_brain_mask(image)
    else:
        image = np.random.default_rng(0).uniform(0, 255, (320, 320, 247)).astype(np.float32)
        mask = np.ones(image.shape, bool)
    status = {"patch_size": 96, "normalization": "minmax", "mean": 0.0, "std": 1.0}
    rng = np.random.default_rng(1)
    x = tf.constant(rng.uniform(-1, 1, (32, 96, 96, 1)).astype(np.float32))
    y = tf.constant((rng.uniform(size=(32, 96, 96, 1)) > 0.99).astype(np.float32))
    print(f"volume {image.shape}, {int(mask.sum()):,} voxels in the mask; batch 32 of 96x96; cores "
          f"{tf.config.threading.get_inter_op_parallelism_threads() or 'default'}")
    print(f"{'recipe':8s} {'width':>5s} {'loss':>8s} {'tiles':>8s} {'TTA':>4s} {'s/step':>7s} {'GFLOP/s':>8s} "
          f"{'volume s':>9s} {'step ratio':>10s} {'volume ratio':>12s}")
    base = None
    for name in args.recipes:
        width, loss, weighting, flips = RECIPES[name]
        model = compile_unet(build_unet(width, 0.1), 3e-4, loss)
        model.train_on_batch(x, y)
        times = []
        for _ in range(args.steps):
            t = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(time.perf_counter() - t)
        s_step = float(np.median(times))
        gflops = 3 * 32 * conv_gflop_per_sample(model, 96) / s_step
        t = time.perf_counter()
        segment_volume(model, image, mask, status, 48, 64, weighting, flips)
        s_volume = time.perf_counter() - t
        base = base or (s_step, s_volume)
        print(f"{name:8s} {width:5.2f} {loss:>8s} {weighting:>8s} {str(flips):>4s} {s_step:7.3f} {gflops:8.1f} "
              f"{s_volume:9.1f} {s_step / base[0]:10.2f} {s_volume / base[1]:12.2f}", flush=True)


if __name__ == "__main__":
    main()
