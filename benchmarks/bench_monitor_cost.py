"""Machine-seconds per GAN epoch with the epoch-end check every epoch and every Nth (gan.monitor_every),
and with snapshots every Nth epoch or none (gan.snapshot_every).

    python benchmarks/bench_monitor_cost.py --patches out/oc/patches
        [--config experiments/cpu/icbm_official_critic_4x_signed.yaml] [--every 1,8] [--snapshot-every 0]
        [--epochs 6] [--rounds 2]

Trains the config's GAN for --epochs epochs of its steps_per_epoch (no budget, no scoring)
once per (monitor_every, snapshot_every) pair per round, the pairs alternating so that a
drifting host hits them alike, in a temporary folder. Reports the median machine-seconds
(process CPU time / cores, the budget's clock) of epochs 2.. (epoch 1 traces the graphs), and
each pair's ratio to the first pair's, both measured in this run.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import tf_vesselgan  # noqa: F401  (TF environment defaults)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patches", required=True, help="output folder of `vesselgan patches`")
    ap.add_argument("--config", default="experiments/cpu/icbm_official_critic_4x_signed.yaml")
    ap.add_argument("--every", default="1,8", help="monitor_every values, comma-separated")
    ap.add_argument("--snapshot-every", default="0", help="snapshot_every values, comma-separated (0 = none)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    from tf_vesselgan.config import load_config
    from tf_vesselgan.training.gan_trainer import train_gan

    values = [(int(m), int(s)) for s in args.snapshot_every.split(",") for m in args.every.split(",")]
    per_epoch: dict[tuple[int, int], list[float]] = {v: [] for v in values}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for v in values:
                overrides = {"epochs": args.epochs, "max_seconds": None, "quality_score": "fid",
                             "monitor_every": v[0], "snapshot_every": v[1]}
                cfg = load_config(args.config, {"gan": overrides})
                run = Path(tmp) / f"r{r}_m{v[0]}_s{v[1]}"
                train_gan(args.patches, run, cfg, verbose=0)
                clock = json.loads((run / "run.json").read_text())["clock"]
                machine = [clock[str(e)]["machine_seconds"] for e in range(1, args.epochs + 1)]
                epochs = [b - a for a, b in zip(machine, machine[1:])]
                per_epoch[v] += epochs
                print(f"round {r + 1}, monitor_every {v[0]}, snapshot_every {v[1]}: "
                      f"{statistics.median(epochs):.2f} machine-s per epoch "
                      f"(epochs 2-{args.epochs})", flush=True)
    base = statistics.median(per_epoch[values[0]])
    print(f"{'monitor_every':>14}{'snapshot_every':>15}{'machine-s/epoch':>17}{'ratio':>8}")
    for v in values:
        med = statistics.median(per_epoch[v])
        print(f"{v[0]:>14}{v[1]:>15}{med:>17.2f}{med / base:>8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
