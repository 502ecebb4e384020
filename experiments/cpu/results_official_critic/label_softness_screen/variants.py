"""Pair sets of the shipped generator (saved_models/vessel_pairs_icbm/4) that differ only in
how the label channel becomes a label, or in the batch-norm statistics at sampling time.

    python experiments/cpu/results_official_critic/label_softness_screen/variants.py OUT

The export bakes its threshold into the graph, so the generator is rebuilt from the
SavedModel's variables (width 1/8, noise 100, transposed convolutions; the checkpoint
lists its layers in the order build_generator creates them) and checked against the
export: same images, same labels. Writes OUT/<set>.npz with 5,000 pairs drawn with the
noise of `vesselgan sample --seed 1`:
  hard       the export's labels (label channel > its threshold)
  soft<tau>  sigmoid((channel - threshold) / tau), tau 0.05, 0.1, 0.15 (float labels)
  ramp0.5    clip((channel - threshold) / 0.5, 0, 1): partial labels above the threshold only
  bnbatch32  batch statistics of batches of 32 (the paper's code samples in training
             mode), threshold recalibrated to the real vessel fraction of the export
"""
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

import tf_vesselgan  # noqa: F401
from tf_vesselgan.models.generator import build_generator
from tf_vesselgan.training.finalize import calibrate_threshold
from tf_vesselgan.training.sampling import SAMPLE_BATCH, block_noise, pairs_from_export

EXPORT = Path("saved_models/vessel_pairs_icbm/4")
REAL_FRACTION = 0.0035532023111979165  # provenance.json real_label_fraction
N = 5000
ORDER = {"kernel": 0, "bias": 1, "gamma": 0, "beta": 1, "moving_mean": 2, "moving_variance": 3}


def rebuilt_generator():
    reader = tf.train.load_checkpoint(str(EXPORT / "variables" / "variables"))
    keys = [k for k in reader.get_variable_to_shape_map() if k.startswith("generator/_operations/")]
    layers = sorted({int(k.split("/")[2]) for k in keys})
    weights = []
    for layer in layers:
        own = sorted((k for k in keys if int(k.split("/")[2]) == layer), key=lambda k: ORDER[k.split("/")[3]])
        weights += [reader.get_tensor(k) for k in own]
    gen = build_generator(100, 0.125, 96)
    gen.set_weights(weights)
    return gen, float(reader.get_tensor("label_threshold/.ATTRIBUTES/VARIABLE_VALUE"))


def draw(gen, training: bool, batch: int):
    z = tf.concat([block_noise(1, k, 100) for k in range(-(-N // SAMPLE_BATCH))], 0)[:N]
    pairs = np.concatenate([gen(z[s:s + batch], training=training).numpy() for s in range(0, N, batch)])
    return pairs[..., 0], pairs[..., 1]


def main(out: str) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gen, thr = rebuilt_generator()
    image, channel = draw(gen, False, SAMPLE_BATCH)
    ref_image, ref_label = pairs_from_export(EXPORT, N, 1)
    assert np.array_equal(ref_image, image) and np.array_equal(ref_label, channel > thr), "rebuild differs from export"
    sets = {"hard": (channel > thr).astype(np.uint8),
            **{f"soft{tau:g}": 1 / (1 + np.exp(-(channel - thr) / tau)) for tau in (0.05, 0.1, 0.15)},
            "ramp0.5": np.clip((channel - thr) / 0.5, 0, 1)}
    for name, label in sets.items():
        np.savez(out / f"{name}.npz", image=image, label=label.astype(label.dtype if name == "hard" else np.float32))
        print(f"{name}: mean label {label.mean():.5f}")
    bn_image, bn_channel = draw(gen, True, 32)
    bn_thr = calibrate_threshold(bn_channel, REAL_FRACTION)
    np.savez(out / "bnbatch32.npz", image=bn_image, label=(bn_channel > bn_thr).astype(np.uint8))
    print(f"bnbatch32: threshold {bn_thr:.4f}, mean label {(bn_channel > bn_thr).mean():.5f}")


if __name__ == "__main__":
    main(sys.argv[1])
