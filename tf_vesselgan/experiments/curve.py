"""The quality-vs-CPU-time curve of an anonymization study: for each GAN, the snapshot
it had saved after t machine-minutes (`study.curve_minutes`) is sampled, a U-net is
trained on those synthetic pairs only and scored on the real test patients; the GAN's
final generator is the curve's last point. Also FID in the real U-net's features.
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np

from tf_vesselgan.config import ExperimentConfig
from tf_vesselgan.experiments.layout import Layout
from tf_vesselgan.training.run_folder import has_status, read_status
from tf_vesselgan.utils.tables import read_rows

CURVE_FIELDS = ("gan", "minutes", "snapshot", "label_threshold", "fid", "test_dice", "test_dice_sd",
                "test_hd95_mm", "ratio_to_real", "source")


def pick_snapshot(run: Path, seconds: float) -> dict | None:
    """The latest snapshot saved at or before `seconds` machine-seconds of training."""
    from tf_vesselgan.training.snapshots import read_snapshots

    rows = [r for r in read_snapshots(run) if float(r["machine_seconds"]) <= seconds]
    return max(rows, key=lambda r: float(r["machine_seconds"])) if rows else None


def curve_points(cfg: ExperimentConfig, arch_cfg) -> list[float]:
    """The curve's minutes for one GAN: those inside its budget (the final generator is
    the last point)."""
    budget = arch_cfg.gan.max_seconds
    return [t for t in cfg.study.curve_minutes if budget is None or t * 60 < budget]


def test_summary(folder: Path) -> dict | None:
    """Mean ± sd test Dice and mean 95HD of an evaluation folder's per_patient.csv."""
    path = folder / "per_patient.csv"
    if not path.exists():
        return None
    rows = read_rows(path)
    dice = np.array([float(r["dice"]) for r in rows])
    return {"test_dice": float(dice.mean()), "test_dice_sd": float(dice.std(ddof=1)) if len(dice) > 1 else 0.0,
            "test_hd95_mm": float(np.mean([float(r["hd95_mm"]) for r in rows]))}


def curve_point(cfg: ExperimentConfig, out: Path, data: Path, arch: str, minutes: float, folder: Path) -> None:
    """Samples the snapshot of `minutes`, trains a synthetic-only U-net, scores it."""
    import keras

    from tf_vesselgan.evaluation.evaluate import run_segmentation
    from tf_vesselgan.evaluation.fid import distance_table
    from tf_vesselgan.training.sampling import write_samples
    from tf_vesselgan.training.unet_trainer import train_unet

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    at = Layout(out)
    run = at.gan(arch)
    samples, unet, evaluation = Layout.point_samples(folder), Layout.point_unet(folder), Layout.point_evaluation(folder)
    snap = pick_snapshot(run, minutes * 60)
    if snap is None:
        (folder / "point.json").write_text(json.dumps({"gan": arch, "minutes": minutes, "snapshot": None}))
        return
    gen = keras.models.load_model(str(run / snap["file"]), compile=False)
    thr = float(snap["label_threshold"])
    write_samples(gen, cfg.study.n_samples, samples, seed=cfg.seed, threshold=thr, overwrite=True,
                  progress=False, meta={"arch": arch, "snapshot": snap["file"]})
    train_unet("synthetic", at.patches, unet, cfg, samples=samples, verbose=2)
    run_segmentation(unet, data, "test", evaluation, evaluate=True, overwrite=True, progress=False)
    point = {"gan": arch, "minutes": float(snap["machine_seconds"]) / 60, "snapshot": snap["file"],
             "label_threshold": thr, "source": str(folder.relative_to(out))}
    real = at.unet(Layout.unet_name("real"))
    if read_status(real).get("normalization") != "global":
        row = distance_table(at.patches, [samples], f"unet:{real}", cfg.study.fid_samples, seed=cfg.seed)[0]
        point["fid"] = row["fid"]
    (folder / "point.json").write_text(json.dumps(point, indent=2))


def curve_rows(out: Path, cfg: ExperimentConfig, arch_cfgs: dict) -> list[dict]:
    """One row per (GAN, point), the final generator last; ratios to the real U-net."""
    at = Layout(out)
    real = test_summary(at.evaluation(Layout.unet_name("real"), "test"))
    fids = {}
    if (at.fid / "fid.csv").exists():
        fids = {r["gan"]: float(r["fid"]) for r in read_rows(at.fid / "fid.csv")}
    rows = []
    for arch in arch_cfgs:
        for t in curve_points(cfg, arch_cfgs[arch]):
            folder = at.curve(arch, t)
            p = folder / "point.json"
            if not p.exists() or json.loads(p.read_text()).get("snapshot") is None:
                continue
            point = json.loads(p.read_text())
            rows.append({**point, **(test_summary(Layout.point_evaluation(folder)) or {})})
        evaluation = at.evaluation(Layout.unet_name("synthetic", arch), "test")
        final = test_summary(evaluation)
        if has_status(at.gan(arch)) and final:
            status = read_status(at.gan(arch))
            rows.append({"gan": arch, "minutes": status.get("machine_seconds", float("nan")) / 60,
                         "snapshot": "generator.keras", "label_threshold": status.get("label_threshold"),
                         "fid": fids.get(arch), "source": evaluation.name, **final})
    for r in rows:
        r["ratio_to_real"] = r["test_dice"] / real["test_dice"] if real and real["test_dice"] > 0 else None
    return rows


def write_curve(out: Path, rows: list[dict], real: dict | None, plt) -> None:
    """curve.csv and curve.png (test Dice vs GAN machine-minutes, real U-net dotted)."""
    with open(Layout(out).file("curve.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CURVE_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    fig, ax = plt.subplots(figsize=(6, 4))
    lines = {f"{arch}, synthetic pairs only": [r for r in rows if r["gan"] == arch]
             for arch in dict.fromkeys(r["gan"] for r in rows)}
    draw_curves(ax, lines, {"real training patches": real["test_dice"]} if real else {})
    fig.tight_layout()
    fig.savefig(Layout(out).file("curve.png"), dpi=100)
    plt.close(fig)


def draw_curves(ax, lines: dict[str, list[dict]], reals: dict[str, float]) -> None:
    """Test Dice vs GAN machine-minutes: one line per label (its curve rows), a dotted
    horizontal line per real-trained U-net (label: test Dice)."""
    for label, rows in lines.items():
        pts = sorted((r["minutes"], r["test_dice"]) for r in rows)
        ax.plot(*zip(*pts), marker="o", label=label)
    for label, dice_ in reals.items():
        ax.axhline(dice_, ls=":", color="k", label=label)
    ax.set_xlabel("GAN training, machine-minutes (CPU time / 2 cores)")
    ax.set_ylabel("U-net test Dice (mean over patients)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
