"""Scores a GAN run's saved snapshots after the fact, by the same procedure a scored run
uses while it trains (`gan.quality_score`, training/snapshots.py), without touching the run.

    python benchmarks/score_snapshots.py --run out/cpu_oc4x_signed/gan_dcgan --patches out/cpu_oc4x_signed/patches \
        [--config experiments/cpu/icbm_official_critic_4x_signed_60_scored.yaml] [--every 8] [--epochs 80,160] \
        [--csv scores.csv] [--png scores.png] [--rescore] [--label "width 1/4"] [--compare "width 1/8=other.csv"] \
        [--x epoch]

Snapshots the run already scored by the same score keep their score (marked "run"),
unless --rescore; so on a run resumed with scoring (as
experiments/cpu/icbm_official_critic_4x_signed_60_scored.yaml) one call gives the whole
curve, scoring only the snapshots saved before scoring was switched on. The scorer's
settings (score, quality_samples, quality_unet_width/steps, seed, U-net learning rate)
come from --config when given, else from the run's own config.yaml; a run trained
unscored can so be scored with the settings of a scored one, and its numbers compared
with that run's snapshots.csv. Each snapshot is sampled at the label threshold
it was saved with. Prints one row per snapshot: epoch, machine-minutes, score.
--compare overlays the curve another call wrote with --csv (same score) in the figure.
--x epoch plots against epochs instead of machine-minutes: runs on machines of different
speed (or sharing their cores differently) are compared update for update.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import tf_vesselgan  # noqa: F401  (TF environment defaults)


def chosen(rows: list[dict], every: int, epochs: set[int]) -> list[dict]:
    """The snapshot rows to score: those in `epochs`, else every `every`-th saved one
    (counted from the last, so the run's final snapshot is always among them)."""
    if epochs:
        return [r for r in rows if int(r["epoch"]) in epochs]
    return rows[::-1][::every][::-1]


# --x → (CSV column, axis label)
X_AXES = {"minutes": ("machine_minutes", "GAN machine-minutes"), "epoch": ("epoch", "GAN epochs")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, type=Path, help="GAN run folder with snapshots.csv")
    ap.add_argument("--patches", required=True, type=Path, help="the run's patch folder (real patches to score on)")
    ap.add_argument("--config", type=Path, help="scorer settings from this experiment config (default: the run's)")
    ap.add_argument("--every", type=int, default=1, help="score every N-th saved snapshot")
    ap.add_argument("--epochs", default="", help="comma-separated snapshot epochs to score (overrides --every)")
    ap.add_argument("--rescore", action="store_true", help="score again snapshots the run already scored")
    ap.add_argument("--csv", type=Path, help="also write the scores here")
    ap.add_argument("--png", type=Path, help="and plot them (score against machine-minutes or epochs) here")
    ap.add_argument("--x", choices=sorted(X_AXES), default="minutes", help="the figure's x axis (default: minutes)")
    ap.add_argument("--label", help="this run's name in the figure (default: the run folder)")
    ap.add_argument("--compare", action="append", default=[], metavar="LABEL=CSV",
                    help="also plot a curve this script wrote with --csv for another run (repeatable)")
    args = ap.parse_args()
    from tf_vesselgan.config import load_config
    from tf_vesselgan.data.build import read_manifest
    from tf_vesselgan.errors import UserError
    from tf_vesselgan.training.gan_trainer import snapshot_scorer
    from tf_vesselgan.training.run_folder import load_run_config
    from tf_vesselgan.training.snapshots import read_snapshots

    try:
        epochs = {int(e) for e in args.epochs.split(",") if e.strip()}
    except ValueError:
        print(f"error: --epochs: not a comma-separated list of integers: {args.epochs!r}", file=sys.stderr)
        return 2
    if args.every < 1:
        print("error: --every must be at least 1", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config) if args.config else load_run_config(args.run)
        manifest = read_manifest(args.patches)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        others = [compared(spec, cfg.gan.quality_score, args.x) for spec in args.compare]
    except ValueError as e:
        print(f"error: --compare: {e}", file=sys.stderr)
        return 2
    scorer = snapshot_scorer(cfg, args.patches, manifest)
    rows = chosen(read_snapshots(args.run), args.every, epochs)
    if scorer is None or not rows:
        print("error: " + ("no snapshots to score" if scorer is not None else
                           f"gan.quality_score {cfg.gan.quality_score} needs gan.quality_features"), file=sys.stderr)
        return 2
    missing = [r["file"] for r in rows if not (args.run / r["file"]).is_file()
               and (args.rescore or r.get(cfg.gan.quality_score) in ("", None, "nan"))]
    if missing:
        print(f"error: {args.run}: {len(missing)} snapshot files listed in snapshots.csv are missing, "
              f"e.g. {missing[0]}", file=sys.stderr)
        return 2
    import keras

    score = cfg.gan.quality_score
    print(f"{score} ({cfg.gan.quality_samples} pairs, U-net width {cfg.gan.quality_unet_width}, "
          f"{cfg.gan.quality_unet_steps} steps where it trains one)")
    print(f"{'epoch':>6}{'machine-min':>13}{score:>11}{'seconds':>9}")
    out = []
    for row in rows:
        start = time.perf_counter()
        if row.get(score) not in ("", None, "nan") and not args.rescore:
            value, source = float(row[score]), "run"
        else:
            gen = keras.models.load_model(str(args.run / row["file"]), compile=False)
            value, source = scorer(gen, float(row["label_threshold"])), "rescored"
        took = time.perf_counter() - start
        minutes = float(row["machine_seconds"]) / 60
        print(f"{int(row['epoch']):>6}{minutes:>13.1f}{value:>11.4f}{took:>9.0f}  {source}", flush=True)
        out.append({"epoch": int(row["epoch"]), "machine_minutes": round(minutes, 2), score: value, "source": source})
    if args.csv is not None:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(out[0]))
            w.writeheader()
            w.writerows(out)
    if args.png is not None:
        plot(out, score, args.label or str(args.run), args.png, others, args.x)
    return 0


def compared(spec: str, score: str, x: str = "minutes") -> tuple[str, list[tuple[float, float]]]:
    """LABEL=CSV → (label, [(x, score)]) from a CSV this script wrote; ValueError if not one."""
    label, sep, path = spec.partition("=")
    if not sep or not label or not path:
        raise ValueError(f"expected LABEL=CSV, got {spec!r}")
    column = X_AXES[x][0]
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return label, [(float(r[column]), float(r[score])) for r in rows]
    except OSError as e:
        raise ValueError(f"{path}: {e.strerror}") from None
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: not a curve of {score} by {column} written with --csv") from None


def draw(ax, rows: list[dict], score: str, label: str, others=(), x: str = "minutes") -> None:
    """The scores against `x`, the run's own and the rescored ones marked apart, over the
    compared curves."""
    column, xlabel = X_AXES[x]
    for name, pts in others:
        ax.plot(*zip(*pts), marker=".", linewidth=1, alpha=0.7, label=name)
    ax.plot([r[column] for r in rows], [r[score] for r in rows], color="0.3", linewidth=1.2)
    for source, marker in (("rescored", "o"), ("run", "s")):
        pts = [(r[column], r[score]) for r in rows if r["source"] == source]
        if pts:
            how = "scored after training" if source == "rescored" else "scored by the run"
            ax.plot(*zip(*pts), marker, color="0.3", label=f"{label}: {how}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(score.replace("_", "-") + " score")
    ax.legend(fontsize=8)


def plot(rows: list[dict], score: str, label: str, path: Path, others=(), x: str = "minutes") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    draw(ax, rows, score, label, others, x)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
