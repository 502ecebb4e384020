"""Screen: do the pairs the discriminator rates most real teach a U-net more?

usage: python screen.py RUN PATCHES OUT N_KEEP N_CAND [unet_steps] [unet_seeds]

Draws N_CAND pairs from the run's sampling generator (`vesselgan sample --seed 1`'s noise),
rates each with the run's last discriminator (in chunks of the GAN's batch size, batch
statistics as in training, and population statistics), and writes N_KEEP-pair sets to
OUT/<variant>/samples.npz: plain (the first N_KEEP, = `vesselgan sample --n N_KEEP --seed 1`),
top_train / top_eval (the N_KEEP rated most real), bottom_train (the N_KEEP rated least
real), trunc07 (noise scaled by 0.7, the run's label threshold unchanged). Each set trains a
width-1/4 U-net for `unet_steps` steps per U-net seed, scored by Dice on 1,000 real patches
of the validation patient at probability thresholds 0.3/0.5/0.7/0.9 -> OUT/scores.csv.
A screen, not the study's recipe: the study trains a width-1/2 U-net for 1,600 steps and
scores whole held-out volumes.
"""
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
import keras

from tf_vesselgan.data.pipeline import labelled_patches
from tf_vesselgan.training.run_models import restore_critic, restore_generator
from tf_vesselgan.training.sampling import block_noise, SAMPLE_BATCH
from tf_vesselgan.data.normalization import normalize
from tf_vesselgan.training.snapshots import _dice

run, patches, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
n_keep, n_cand = int(sys.argv[4]), int(sys.argv[5])
steps = int(sys.argv[6]) if len(sys.argv) > 6 else 600
useeds = [int(s) for s in (sys.argv[7] if len(sys.argv) > 7 else "1,2").split(",")]
out.mkdir(parents=True, exist_ok=True)

gen, cfg = restore_generator(run)
critic = restore_critic(run)
thr = cfg.gan.label_threshold
bs = cfg.gan.batch_size
latent = gen.input_shape[-1]
infer = tf.function(lambda z: gen(z, training=False))
score_t = tf.function(lambda x: critic(x, training=True)[0][:, 0])
score_f = tf.function(lambda x: critic(x, training=False)[0][:, 0])

t0 = time.time()
raws, st, sf = [], [], []
for k, start in enumerate(range(0, n_cand, SAMPLE_BATCH)):
    b = min(SAMPLE_BATCH, n_cand - start)
    raw = infer(block_noise(1, k, latent)[:b])
    raws.append(raw.numpy())
    for i in range(0, b, bs):
        chunk = raw[i:i + bs]
        st.append(score_t(chunk).numpy())
        sf.append(score_f(chunk).numpy())
raw = np.concatenate(raws)
st, sf = np.concatenate(st), np.concatenate(sf)
print(f"{n_cand} candidates scored in {time.time() - t0:.1f} s; corr(train-mode, eval-mode) "
      f"{np.corrcoef(st, sf)[0, 1]:.3f}", flush=True)

img_all = raw[..., 0]
lab_all = (raw[..., 1] > thr).astype(np.uint8)
frac = lambda idx: float(lab_all[idx].mean())  # noqa: E731
variants = {
    "plain": np.arange(n_keep),
    "top_train": np.sort(np.argsort(-st)[:n_keep]),
    "bottom_train": np.sort(np.argsort(st)[:n_keep]),
    "top_eval": np.sort(np.argsort(-sf)[:n_keep]),
    "trunc07": None,
}
tr = [infer(0.7 * block_noise(1, k, latent)[:min(SAMPLE_BATCH, n_keep - s)]).numpy()
      for k, s in enumerate(range(0, n_keep, SAMPLE_BATCH))]
tr = np.concatenate(tr)
real_img, real_lab = labelled_patches(patches, 1000, "val", seed=cfg.seed)
real_x = normalize(real_img, "minmax")[..., None]
from tf_vesselgan.models.unet import build_unet  # noqa: E402
from tf_vesselgan.training.unet_trainer import compile_unet  # noqa: E402

rows = []
for name, idx in variants.items():
    if idx is None:  # truncated noise: its own pairs
        img_all = np.concatenate([img_all, tr[..., 0]])
        lab_all = np.concatenate([lab_all, (tr[..., 1] > thr).astype(np.uint8)])
        st = np.concatenate([st, np.full(len(tr), np.nan)])
        idx = np.arange(len(img_all) - len(tr), len(img_all))
    d = out / name
    d.mkdir(exist_ok=True)
    np.savez(d / "samples.npz", image=img_all[idx].astype(np.float32), label=lab_all[idx])
    (d / "samples.json").write_text(json.dumps({"n": len(idx), "threshold": float(thr), "variant": name}))
    for us in useeds:
        t1 = time.time()
        ds = (tf.data.Dataset.from_tensor_slices((normalize(img_all[idx], "minmax")[..., None],
                                                  lab_all[idx].astype(np.float32)[..., None]))
              .shuffle(len(idx), seed=us).repeat().batch(32))
        keras.utils.set_random_seed(us)
        model = compile_unet(build_unet(0.25, 0.0), cfg.unet.learning_rate)
        model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
        prob = model.predict(real_x, batch_size=64, verbose=0)[..., 0]
        best = max((_dice(prob > t, real_lab), t) for t in (0.3, 0.5, 0.7, 0.9))
        row = {"variant": name, "unet_seed": us, "dice_05": round(_dice(prob > 0.5, real_lab), 4),
               "dice_best": round(best[0], 4), "best_t": best[1], "label_fraction": round(frac(idx), 5),
               "score_train_mean": round(float(st[idx].mean()), 3), "seconds": round(time.time() - t1, 1)}
        print(row, flush=True)
        rows.append(row)
with open(out / "scores.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
