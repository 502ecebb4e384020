"""`vesselgan tune`: keras-tuner search over the U-net's learning rate (log) and dropout.

Scored by patch Dice on the validation patients; RandomSearch or BayesianOptimization;
tuner state under RUN/tuner (a rerun resumes: finished trials are not repeated); the
best hyper-parameters go to RUN/best_hparams.json and train the final U-net in RUN/final.
"""
from __future__ import annotations

import json
from pathlib import Path

import keras
import keras_tuner as kt

from tf_vesselgan.config import ExperimentConfig
from tf_vesselgan.data.build import read_manifest
from tf_vesselgan.errors import UserError
from tf_vesselgan.models.unet import build_unet
from tf_vesselgan.training.unet_trainer import (compile_unet, resolve_normalization, synthetic_pairs, train_unet,
                                               training_datasets)


class UNetHyperModel(kt.HyperModel):
    """Half U-net whose learning rate and dropout are chosen by the tuner."""

    def __init__(self, cfg: ExperimentConfig):
        super().__init__(name="half_unet")
        self.cfg = cfg

    def build(self, hp):
        u = self.cfg.unet
        lr = hp.Float("learning_rate", u.lr_min, u.lr_max, sampling="log")
        dropout = hp.Float("dropout", u.dropout_min, u.dropout_max)
        return compile_unet(build_unet(u.width, dropout), lr, u.loss)


def tune(train: str, patches_dir, out, cfg: ExperimentConfig, samples=None, final: bool = True) -> dict:
    u = cfg.unet
    if u.lr_min >= u.lr_max or u.dropout_min > u.dropout_max:
        raise UserError("unet.lr_min must be < lr_max and dropout_min <= dropout_max")
    manifest = read_manifest(patches_dir)
    if manifest["counts"].get("val", 0) == 0:
        raise UserError("tuning needs validation patients; the patches folder has none")
    norm = resolve_normalization(cfg, train, manifest)
    pairs = synthetic_pairs(train, samples, manifest)
    run = Path(out)
    run.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    ds, val, _, steps = training_datasets(cfg, train, patches_dir, norm, cfg.seed, pairs)
    objective = kt.Objective("val_dice_metric", direction="max")
    common = dict(objective=objective, max_trials=u.max_trials, seed=cfg.seed, directory=str(run / "tuner"),
                  project_name="unet", overwrite=False)
    hm = UNetHyperModel(cfg)
    tuner = (kt.BayesianOptimization(hm, **common) if u.tuner == "bayesian" else kt.RandomSearch(hm, **common))
    tuner.search(ds, validation_data=val, epochs=u.tune_epochs, steps_per_epoch=steps, verbose=0)
    best = tuner.get_best_hyperparameters(1)[0].values
    trials = [{"trial": t.trial_id, **t.hyperparameters.values, "val_dice": t.score}
              for t in tuner.oracle.trials.values() if t.score is not None]
    result = {"best": {k: float(v) for k, v in best.items()}, "trials": trials, "tuner": u.tuner}
    (run / "best_hparams.json").write_text(json.dumps(result["best"], indent=2))
    (run / "trials.json").write_text(json.dumps(trials, indent=2))
    if final and not (run / "final" / "unet.keras").exists():
        import shutil

        if (run / "final").exists():
            shutil.rmtree(run / "final")  # an interrupted final training restarts
        train_unet(train, patches_dir, run / "final", cfg, samples=samples, hparams=result["best"], pairs=pairs)
    return result
