"""Quality while a GAN trains: per-epoch collapse and label checks of the sampling
generator, and every N epochs a saved snapshot scored by FID in a real U-net's features.

Snapshots are what a quality-vs-time curve is made of, and with a score the run keeps
its best generator rather than its last.
"""
from __future__ import annotations

import csv
from pathlib import Path

import keras
import numpy as np

from tf_vesselgan.training.finalize import collapse_std, finalize_generator

QUALITY_KEYS = ("collapse_std", "sample_label_fraction", "label_threshold", "fid")


class Snapshots(keras.callbacks.Callback):
    """Args:
        run: run folder (snapshots/ and snapshots.csv go there).
        source: callable → the generator to sample from (the EMA copy or the generator).
        gan_cfg: the run's GANConfig (sampling settings, snapshot_every, quality_*).
        real_fraction: the training patches' vessel fraction.
        real_images: callable → real training image channels for FID (when scored).
        clock: callable → (machine, wall) seconds so far.
    """

    def __init__(self, run, source, gan_cfg, seed: int, real_fraction: float, real_images=None, clock=None):
        super().__init__()
        self.run = Path(run)
        self.source = source
        self.g = gan_cfg
        self.seed = seed
        self.real_fraction = real_fraction
        self.real_images = real_images
        self.clock = clock
        self.current = None  # (generator, threshold) of the last epoch
        self._extract = None
        self._real_stats = None

    def _score(self, generator, threshold) -> float:
        from tf_vesselgan.evaluation.fid import frechet_distance, statistics, unet_extractor
        from tf_vesselgan.training.sampling import generate

        if self._extract is None:
            self._extract = unet_extractor(self.g.quality_features[5:])
            self._real_stats = statistics(self._extract(self.real_images()))
        images = np.concatenate([img for img, _ in generate(generator, self.g.quality_samples, self.seed + 1,
                                                            threshold)])
        mu, sigma = statistics(self._extract(images))
        return frechet_distance(*self._real_stats, mu, sigma)

    def on_epoch_end(self, epoch, logs=None):
        gen, thr, info = finalize_generator(self.source(), self.g, self.seed, self.real_fraction)
        self.current = (gen, thr)
        row = {"epoch": epoch + 1, "collapse_std": collapse_std(gen, seed=self.seed),
               "sample_label_fraction": info["sample_label_fraction"], "label_threshold": thr}
        snap = self.g.snapshot_every and (epoch + 1) % self.g.snapshot_every == 0
        if self.g.quality_features:  # every epoch has the key, so history.csv has the column
            row["fid"] = self._score(gen, thr) if snap else float("nan")
        if logs is not None:
            logs.update({k: v for k, v in row.items() if k != "epoch"})
        if row["collapse_std"] < self.g.collapse_std_floor:
            print(f"warning: epoch {epoch + 1}: samples look collapsed (per-pixel std across samples "
                  f"{row['collapse_std']:.4f} < {self.g.collapse_std_floor:g})", flush=True)
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


SNAPSHOT_FIELDS = ("epoch", "machine_seconds", "wall_seconds", "collapse_std", "sample_label_fraction",
                   "label_threshold", "fid", "file")


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


def best_snapshot(run) -> dict | None:
    """The snapshot with the lowest FID, or None when none was scored."""
    scored = [r for r in read_snapshots(run) if r.get("fid") not in ("", None, "nan")]
    return min(scored, key=lambda r: float(r["fid"])) if scored else None
