"""Quality while a GAN trains: per-epoch collapse and label checks of the sampling
generator, and every N epochs a saved snapshot with a quality score.

Scores (`gan.quality_score`; the names follow Shmelkov et al. 2018, "How good is my GAN?"):
- fid: Fréchet distance in a real-trained U-net's encoder features (lower is better);
- gan_test: Dice of a real-trained U-net on the synthetic pairs — do the labels mark what
  a segmenter of real data sees in the synthetic images (higher is better);
- gan_train: Dice on real patches of a small U-net trained on synthetic pairs only — the
  question the project asks of a generator, in seconds instead of a full study (higher).

Snapshots are what a quality-vs-time curve is made of, and with a score the run keeps
its best generator rather than its last.
"""
from __future__ import annotations

import csv
from pathlib import Path

import keras
import numpy as np

from tf_vesselgan.data.normalization import normalize
from tf_vesselgan.training.finalize import finalize_generator, fixed_noise_images, pixel_std, sample_similarity

QUALITY_KEYS = ("collapse_std", "sample_similarity", "sample_label_fraction", "label_threshold", "fid", "gan_test",
                "gan_train")


def check_quality_unet(run) -> None:
    """Refuses, before any training, a `gan.quality_features` U-net run that cannot score:
    none trained there, or one on global z-scores (synthetic pairs have no intensity scale)."""
    from tf_vesselgan.errors import UserError
    from tf_vesselgan.training.run_folder import read_status

    run = Path(run)
    if not (run / "unet.keras").exists():
        raise UserError(f"gan.quality_features: {run} has no trained U-net (no unet.keras)")
    if read_status(run).get("normalization") == "global":
        raise UserError(f"gan.quality_features: {run} uses global z-scoring; synthetic pairs have no intensity "
                        "scale. Use a U-net trained with unet.normalization minmax")
# which way each score improves
BETTER = {"fid": min, "gan_test": max, "gan_train": max}


def _pairs(generator, n: int, seed: int, threshold: float):
    from tf_vesselgan.training.sampling import generate

    imgs, labs = zip(*generate(generator, n, seed, threshold))
    return np.concatenate(imgs), np.concatenate(labs)


def _dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice over all pixels of a set of patches (1 when both are empty)."""
    pred, truth = pred.astype(bool), truth.astype(bool)
    denom = int(pred.sum()) + int(truth.sum())
    return 2.0 * int((pred & truth).sum()) / denom if denom else 1.0


class FIDScore:
    """FID of the synthetic images against real training images in a U-net's features."""

    def __init__(self, unet_run, real_images, n: int, seed: int):
        self.unet_run, self.real_images, self.n, self.seed = unet_run, real_images, n, seed
        self._extract = self._real = None

    def __call__(self, generator, threshold) -> float:
        from tf_vesselgan.evaluation.fid import frechet_distance, statistics, unet_extractor

        if self._extract is None:
            self._extract = unet_extractor(self.unet_run)
            self._real = statistics(self._extract(self.real_images()))
        images, _ = _pairs(generator, self.n, self.seed + 1, threshold)
        return frechet_distance(*self._real, *statistics(self._extract(images)))


class GANTestScore:
    """Dice between a real-trained U-net's segmentation of the synthetic images and the
    synthetic labels."""

    def __init__(self, unet_run, n: int, seed: int):
        self.unet_run, self.n, self.seed = unet_run, n, seed
        self._model = self._status = None

    def __call__(self, generator, threshold) -> float:
        from tf_vesselgan.training.unet_trainer import load_unet

        if self._model is None:
            self._model, self._status = load_unet(self.unet_run)
        images, labels = _pairs(generator, self.n, self.seed + 1, threshold)
        x = normalize(images, self._status["normalization"])[..., None]
        prob = self._model.predict(x, batch_size=64, verbose=0)[..., 0]
        return _dice(prob > float(self._status.get("threshold", 0.5)), labels)


def train_small_unet(images, labels, width: float, steps: int, learning_rate: float, seed: int,
                     batch_size: int = 32) -> keras.Model:
    """A fresh U-net (no dropout, Dice loss) trained `steps` steps on pairs (images in
    [-1, 1], scaled per patch as U-nets on synthetic pairs see them); its weights and data
    order follow the seed. GAN-train's U-net, and benchmarks/screen_pairs.py's."""
    import tensorflow as tf

    from tf_vesselgan.models.unet import build_unet
    from tf_vesselgan.training.unet_trainer import compile_unet

    x = normalize(images, "minmax")[..., None]
    ds = (tf.data.Dataset.from_tensor_slices((x, labels.astype(np.float32)[..., None]))
          .shuffle(len(images), seed=seed).repeat().batch(batch_size))
    keras.utils.set_random_seed(seed)
    model = compile_unet(build_unet(width, 0.0), learning_rate)
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return model


class GANTrainScore:
    """Dice on fixed real patches (`real_pairs()` → (images in [-1, 1], labels)) of a fresh
    U-net trained for `steps` on `n` synthetic pairs; the U-net's weights, data order and
    noise follow the seed, so two snapshots are scored by the same procedure."""

    def __init__(self, real_pairs, n: int, seed: int, width: float, steps: int, learning_rate: float,
                 batch_size: int = 32):
        self.real_pairs, self.n, self.seed = real_pairs, n, seed
        self.width, self.steps, self.lr, self.batch = width, steps, learning_rate, batch_size
        self._real = None

    def __call__(self, generator, threshold) -> float:
        if self._real is None:
            images, labels = self.real_pairs()
            self._real = (normalize(images, "minmax")[..., None], labels)
        images, labels = _pairs(generator, self.n, self.seed + 2, threshold)
        model = train_small_unet(images, labels, self.width, self.steps, self.lr, self.seed, self.batch)
        prob = model.predict(self._real[0], batch_size=64, verbose=0)[..., 0]
        return _dice(prob > 0.5, self._real[1])


def collapse_warning(row: dict, gan_cfg) -> str | None:
    """What an epoch's fixed-noise samples warn of: collapse (per-pixel std below
    gan.collapse_std_floor) or a partial collapse (mean correlation between samples
    above gan.collapse_similarity_ceiling); None when neither."""
    if row["collapse_std"] < gan_cfg.collapse_std_floor:
        return (f"samples look collapsed (per-pixel std across samples {row['collapse_std']:.4f} < "
                f"{gan_cfg.collapse_std_floor:g})")
    if row["sample_similarity"] > gan_cfg.collapse_similarity_ceiling:
        return (f"samples look alike (mean correlation between samples {row['sample_similarity']:.3f} > "
                f"{gan_cfg.collapse_similarity_ceiling:g})")
    return None


class Snapshots(keras.callbacks.Callback):
    """Args:
        run: run folder (snapshots/ and snapshots.csv go there).
        source: callable → the generator to sample from (the EMA copy or the generator).
        gan_cfg: the run's GANConfig (sampling settings, snapshot_every, quality_*).
        real_fraction: the training patches' vessel fraction.
        label_floor: the resolved gan.label_min_intensity (None = off).
        scorer: callable (generator, threshold) → the `gan_cfg.quality_score` of a
            snapshot, or None when snapshots are not scored.
        clock: callable → (machine, wall) seconds so far.
    """

    def __init__(self, run, source, gan_cfg, seed: int, real_fraction: float, label_floor: float | None = None,
                 scorer=None, clock=None):
        super().__init__()
        self.run, self.source, self.g, self.seed = Path(run), source, gan_cfg, seed
        self.real_fraction, self.label_floor, self.scorer, self.clock = real_fraction, label_floor, scorer, clock
        self.current = None  # (generator, threshold) of the last epoch, None when it was not checked

    def on_epoch_end(self, epoch, logs=None):
        snap = self.g.snapshot_every and (epoch + 1) % self.g.snapshot_every == 0
        if not snap and (epoch + 1) % self.g.monitor_every:
            self.current = None  # no check this epoch (gan.monitor_every)
            return
        gen, thr, info = finalize_generator(self.source(), self.g, self.seed, self.real_fraction, self.label_floor)
        self.current = (gen, thr)
        images = fixed_noise_images(gen, seed=self.seed)
        row = {"epoch": epoch + 1, "collapse_std": pixel_std(images),
               "sample_similarity": sample_similarity(images),
               "sample_label_fraction": info["sample_label_fraction"], "label_threshold": thr}
        if self.scorer is not None:  # every epoch has the key, so history.csv has the column
            row[self.g.quality_score] = self.scorer(gen, thr) if snap else float("nan")
        if logs is not None:
            logs.update({k: v for k, v in row.items() if k != "epoch"})
        warning = collapse_warning(row, self.g)
        if warning:
            print(f"warning: epoch {epoch + 1}: {warning}", flush=True)
        if snap:
            self._save(gen, row)

    def _save(self, gen, row: dict) -> None:
        folder = self.run / "snapshots"
        folder.mkdir(exist_ok=True)
        path = folder / f"epoch_{row['epoch']:05d}.keras"
        gen.save(str(path))
        if self.clock is not None:
            row["machine_seconds"], row["wall_seconds"] = self.clock()
        row["file"] = f"snapshots/{path.name}"
        write_snapshot_row(self.run, row)


SNAPSHOT_FIELDS = ("epoch", "machine_seconds", "wall_seconds", "collapse_std", "sample_similarity",
                   "sample_label_fraction", "label_threshold", "fid", "gan_test", "gan_train", "file")


def write_snapshot_row(run: Path, row: dict) -> None:
    """Appends to snapshots.csv, dropping rows of the same or later epochs (a resumed run
    redoes an interrupted epoch)."""
    path = Path(run) / "snapshots.csv"
    rows = [r for r in read_snapshots(run) if int(r["epoch"]) < row["epoch"]]
    rows.append({k: row.get(k, "") for k in SNAPSHOT_FIELDS})
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SNAPSHOT_FIELDS)
        w.writeheader()
        w.writerows(rows)


def read_snapshots(run) -> list[dict]:
    path = Path(run) / "snapshots.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def best_snapshot(run, score: str = "fid") -> dict | None:
    """The snapshot with the best `score` (lowest FID, highest GAN-test/-train Dice), or
    None when none was scored."""
    scored = [r for r in read_snapshots(run) if r.get(score) not in ("", None, "nan")]
    return BETTER[score](scored, key=lambda r: float(r[score])) if scored else None
