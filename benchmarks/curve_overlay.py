"""Several studies' quality-vs-time curves in one figure: synthetic-only U-net test Dice
against GAN machine-minutes, one line per (label, GAN), the real-trained U-net dotted.

    python benchmarks/curve_overlay.py --line "profile=out/cpu3" \
        --line "official critic=out/cpu_oc,out/cpu_oc30" --out experiments/cpu/curve_overlay.png

A line may join several run folders of the same GAN recipe (e.g. a 10-minute run and the
30-minute run that resumed its GAN). Each folder contributes its curve points and final
generators as `vesselgan run` scored them (`curve_rows`, the config read from the GAN run
folders); the real U-net's line is drawn once per distinct test Dice, so studies against
different real U-nets show it. Prints every point; writes the figure and a CSV next to it.

`--points CSV` adds the points of an earlier run of this script (its CSV) whose study
folders are gone, e.g. to draw a new study's line over the committed curves:

    python benchmarks/curve_overlay.py --points experiments/cpu/results_official_critic/curve_overlay.csv \
        --line "official critic, 4x patches=out/cpu_oc4x" --out /tmp/overlay.png
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import tf_vesselgan  # noqa: F401  (TF environment defaults)


def study_rows(run: Path) -> tuple[list[dict], dict | None]:
    """(curve rows, real U-net test summary) of one study folder."""
    from tf_vesselgan.config import load_config, study_arms
    from tf_vesselgan.experiments.curve import curve_rows, test_summary
    from tf_vesselgan.experiments.layout import Layout

    gan_runs = sorted(run.glob("gan_*/config.yaml"))
    if not gan_runs:
        raise SystemExit(f"{run}: no gan_*/config.yaml (not a `vesselgan run` study folder)")
    rows = []
    for path in gan_runs:  # each arm with the study config its GAN was trained under
        arm, cfg = path.parent.name[len("gan_"):], load_config(path)
        arms = study_arms(cfg)
        if arm in arms:
            rows += curve_rows(run, cfg, {arm: arms[arm]})
    real = test_summary(Layout(run).evaluation(Layout.unet_name("real"), "test"))
    return rows, real


def read_points(path: Path) -> list[dict]:
    """The rows of a CSV this script wrote, numbers parsed; SystemExit on another file."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    need = {"line", "minutes", "test_dice", "ratio_to_real", "run", "source"}
    if not rows or not need <= set(rows[0]):
        raise SystemExit(f"--points {path}: not a CSV of this script (needs columns {', '.join(sorted(need))})")
    try:
        return [{**r, "minutes": float(r["minutes"]), "test_dice": float(r["test_dice"]),
                 "ratio_to_real": float(r["ratio_to_real"]) if r["ratio_to_real"] else None} for r in rows]
    except ValueError as e:
        raise SystemExit(f"--points {path}: {e}") from None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--line", action="append", default=[], help="LABEL=RUN[,RUN...]")
    ap.add_argument("--points", type=Path, action="append", default=[],
                    help="a CSV this script wrote: its points are drawn as they are")
    ap.add_argument("--out", type=Path, required=True, help="the figure (.png); the CSV goes next to it")
    args = ap.parse_args()
    if not args.line and not args.points:
        ap.error("give at least one --line or --points")
    for path in args.points:
        if not path.is_file():
            ap.error(f"--points {path}: no such file")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines, reals = {}, {}
    for path in args.points:
        for r in read_points(path):
            lines.setdefault(r["line"], []).append(r)
            if r["ratio_to_real"]:
                reals.setdefault(round(r["test_dice"] / r["ratio_to_real"], 4), r["run"])
    for spec in args.line:
        label, _, runs = spec.partition("=")
        if not runs:
            raise SystemExit(f"--line {spec!r}: expected LABEL=RUN[,RUN...]")
        for run in runs.split(","):
            rows, real = study_rows(Path(run))
            if real:
                reals[round(real["test_dice"], 4)] = run
            for r in rows:
                lines.setdefault(f"{label}: {r['gan']}", []).append({**r, "line": f"{label}: {r['gan']}", "run": run})
    points = [r for rows in lines.values() for r in sorted(rows, key=lambda r: r["minutes"])]
    print(f"{'line':<36}{'minutes':>9}{'test Dice':>11}{'ratio':>8}  run")
    for r in points:
        ratio = r.get("ratio_to_real")
        print(f"{r['line']:<36}{r['minutes']:>9.1f}{r['test_dice']:>11.3f}{ratio if ratio is None else f'{ratio:.2f}':>8}"
              f"  {r['run']}/{r['source']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["line", "minutes", "test_dice", "ratio_to_real", "run", "source"],
                           extrasaction="ignore")
        w.writeheader()
        w.writerows(points)
    from tf_vesselgan.experiments.curve import draw_curves

    fig, ax = plt.subplots(figsize=(7, 4.5))
    draw_curves(ax, {f"{name}, synthetic pairs only": rows for name, rows in lines.items()},
                {f"real training patches ({run})": dice for dice, run in reals.items()})
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out} and {args.out.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
