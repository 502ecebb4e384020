"""How far repeated studies of one recipe lie apart: the synthetic-only U-nets' Dice and
ratio to each study's own real U-net, per run, with mean ± sd over runs and the run a user
would pick without seeing the test patients (the best validation Dice).

    python benchmarks/seed_spread.py --run "seed 1=out/cpu_oc4x_signed" \
        --run "seed 2=out/cpu_oc4x_signed_s2" --run "seed 3=out/cpu_oc4x_signed_s3" \
        --out experiments/cpu/results_official_critic/seeds_4x_signed.csv

A run is a `vesselgan run` study folder or a committed results folder: anything holding the
study's `table2.csv`. Prints every run and the summary; `--out` also writes the per-run rows
as CSV.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

from _labelled import labelled

NEED = {"unet", "test_dice", "val_dice", "test_n", "val_n"}


def read_table(run: Path) -> dict[str, dict]:
    """{U-net name: row} of one study's table2.csv; ValueError on a missing or foreign file."""
    path = run / "table2.csv"
    if not path.is_file():
        raise ValueError(f"{run}: no table2.csv (not a study or results folder)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not NEED <= set(rows[0]):
        raise ValueError(f"{path}: not a study's Table 2 (needs columns {', '.join(sorted(NEED))})")
    if "real" not in {r["unet"] for r in rows}:
        raise ValueError(f"{path}: no row for the real U-net, so no ratio")
    for r in rows:
        for key in ("test_dice", "val_dice"):
            try:
                _number(r, key)
            except ValueError:
                raise ValueError(f"{path}: {r['unet']} {key} is {r[key]!r}, not a number") from None
    return {r["unet"]: r for r in rows}


def _number(row: dict, key: str) -> float | None:
    return float(row[key]) if row.get(key) not in (None, "") else None


def spread(runs: dict[str, dict[str, dict]]) -> tuple[list[dict], list[dict]]:
    """(one row per run and synthetic U-net, one summary row per synthetic U-net).

    Ratios are to each run's own real U-net (a seed changes the real U-net too). The summary
    holds mean and sample sd over runs, and the test ratio of the run with the best validation
    Dice (None when a run has no validation patients)."""
    rows = []
    for label, table in runs.items():
        real = table["real"]
        real_test, real_val = _number(real, "test_dice"), _number(real, "val_dice")
        for unet, r in table.items():
            if unet == "real":
                continue
            test, val = _number(r, "test_dice"), _number(r, "val_dice")
            rows.append({"run": label, "unet": unet, "real_test_dice": real_test, "test_dice": test,
                         "test_ratio": test / real_test if test is not None and real_test else None,
                         "real_val_dice": real_val, "val_dice": val,
                         "val_ratio": val / real_val if val is not None and real_val else None})
    summary = []
    for unet in dict.fromkeys(r["unet"] for r in rows):
        mine = [r for r in rows if r["unet"] == unet]
        entry = {"unet": unet, "runs": len(mine)}
        for key in ("test_dice", "test_ratio", "val_dice", "val_ratio"):
            values = [r[key] for r in mine if r[key] is not None]
            entry[f"{key}_mean"] = statistics.fmean(values) if values else None
            entry[f"{key}_sd"] = statistics.stdev(values) if len(values) > 1 else None
        with_val = [r for r in mine if r["val_dice"] is not None]
        picked = max(with_val, key=lambda r: r["val_dice"]) if len(with_val) == len(mine) else None
        entry["picked_by_val"] = picked["run"] if picked else None
        entry["picked_test_ratio"] = picked["test_ratio"] if picked else None
        summary.append(entry)
    return rows, summary


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", default=[], required=True, help="LABEL=FOLDER (holds table2.csv)")
    ap.add_argument("--out", type=Path, help="write the per-run rows as this CSV")
    args = ap.parse_args()
    runs = {}
    for label, folder in labelled(ap, "--run", args.run).items():
        try:
            runs[label] = read_table(Path(folder))
        except (OSError, ValueError) as e:
            print(f"seed_spread: error: {e}", file=sys.stderr)
            return 2
    rows, summary = spread(runs)
    print(f"{'run':<16}{'U-net':<22}{'real test':>10}{'test':>8}{'ratio':>7}{'real val':>10}{'val':>8}{'ratio':>7}")
    for r in rows:
        print(f"{r['run']:<16}{r['unet']:<22}{_fmt(r['real_test_dice']):>10}{_fmt(r['test_dice']):>8}"
              f"{_fmt(r['test_ratio'], 2):>7}{_fmt(r['real_val_dice']):>10}{_fmt(r['val_dice']):>8}"
              f"{_fmt(r['val_ratio'], 2):>7}")
    for s in summary:
        sd = s["test_ratio_sd"]
        print(f"{s['unet']}: {s['runs']} runs, test Dice {_fmt(s['test_dice_mean'])}, test ratio "
              f"{_fmt(s['test_ratio_mean'], 2)} ± {_fmt(sd, 2)} (sd over runs), "
              f"val ratio {_fmt(s['val_ratio_mean'], 2)}; "
              f"best validation Dice: {s['picked_by_val'] or '–'}, its test ratio {_fmt(s['picked_test_ratio'], 2)}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["run"])
            w.writeheader()
            w.writerows(rows)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
