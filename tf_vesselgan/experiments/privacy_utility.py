"""The privacy-utility study (`study.dp_epsilons`): per GAN and target ε, the ε the run
spent, FID, the synthetic-only U-net's test Dice and its ratio to the real one, and the
membership-inference AUCs of the privacy audit — a table, a CSV and a figure."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from tf_vesselgan.config import ExperimentConfig, arm_name
from tf_vesselgan.experiments.curve import test_summary
from tf_vesselgan.experiments.layout import Layout
from tf_vesselgan.training.run_folder import has_status, read_status
from tf_vesselgan.utils.tables import read_rows

FIELDS = ("gan", "target_epsilon", "epsilon", "delta", "critic_updates", "fid", "test_dice", "test_dice_sd",
          "ratio_to_real", "distance_attack_auc", "critic_attack_auc")


def privacy_utility_rows(out: Path, cfg: ExperimentConfig) -> list[dict]:
    """One row per (GAN, ε) whose synthetic-only U-net was evaluated on the test patients."""
    at = Layout(out)
    real = test_summary(at.evaluation(Layout.unet_name("real"), "test"))
    fids = {r["gan"]: float(r["fid"]) for r in read_rows(at.fid / "fid.csv")} if (at.fid / "fid.csv").exists() else {}
    rows = []
    for arch in cfg.study.gans:
        for target in cfg.study.dp_epsilons:
            arm = arm_name(arch, target)
            result = test_summary(at.evaluation(Layout.unet_name("synthetic", arm), "test"))
            if result is None or not has_status(at.gan(arm)):
                continue
            dp = read_status(at.gan(arm)).get("dp") or {}
            ratio = result["test_dice"] / real["test_dice"] if real and real["test_dice"] else None
            row = {"gan": arch, "target_epsilon": target, "epsilon": dp.get("epsilon", math.inf),
                   "delta": dp.get("delta"), "critic_updates": dp.get("critic_updates"), "fid": fids.get(arm),
                   **result, "ratio_to_real": ratio}
            row.update(_attack_aucs(at.privacy(arm) / "privacy.json"))
            rows.append(row)
    return rows


def _attack_aucs(path: Path) -> dict:
    if not path.exists():
        return {}
    attacks = json.loads(path.read_text())["membership"]
    pick = {"distance_attack_auc": "black box", "critic_attack_auc": "white box"}
    return {key: a["auc"] for key, word in pick.items() for name, a in attacks.items() if word in name}


def privacy_utility_section(out: Path, cfg: ExperimentConfig, plt) -> list[str]:
    """privacy_utility.csv, privacy_utility.png and the report's table."""
    at = Layout(out)
    rows = privacy_utility_rows(out, cfg)
    if not rows:
        return ["", "## Privacy vs utility", "", "No arm has a test evaluation yet."]
    with open(at.file("privacy_utility.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    _figure(at.file("privacy_utility.png"), rows, test_summary(at.evaluation(Layout.unet_name("real"), "test")), plt)

    def num(v, fmt):
        return "–" if v is None else ("∞" if v == math.inf else format(v, fmt))

    lines = ["", "## Privacy vs utility (DP-SGD critic)", "",
             "Per GAN and target ε: the ε the run spent (δ as configured; ∞ = trained without DP), FID in the real "
             "U-net's features, the synthetic-only U-net's test Dice and ratio to the real one, and the audit's "
             "membership-inference AUCs (0.5 = chance).", "",
             "| GAN | target ε | ε spent | critic updates | FID | test Dice | ratio to real | distance attack AUC | "
             "critic attack AUC |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['gan']} | {num(r['target_epsilon'], 'g')} | {num(r['epsilon'], '.2f')} | "
                     f"{num(r['critic_updates'], 'd')} | {num(r['fid'], '.3f')} | "
                     f"{r['test_dice']:.3f} ± {r['test_dice_sd']:.3f} | {num(r['ratio_to_real'], '.2f')} | "
                     f"{num(r.get('distance_attack_auc'), '.3f')} | {num(r.get('critic_attack_auc'), '.3f')} |")
    return lines + ["", "From [privacy_utility.csv](privacy_utility.csv).", "",
                    "![privacy vs utility](privacy_utility.png)"]


def _figure(path: Path, rows: list[dict], real: dict | None, plt) -> None:
    """Synthetic-only test Dice vs ε spent (log scale; the arm without DP drawn at the
    right edge), one line per GAN, the real-trained U-net dotted."""
    finite = [r["epsilon"] for r in rows if r["epsilon"] != math.inf]
    right = max(finite) * 3 if finite else 10.0
    fig, ax = plt.subplots(figsize=(6, 4))
    for gan in dict.fromkeys(r["gan"] for r in rows):
        pts = sorted((r["epsilon"] if r["epsilon"] != math.inf else right, r["test_dice"]) for r in rows
                     if r["gan"] == gan)
        ax.plot(*zip(*pts), "o-", label=gan)
    if real:
        ax.axhline(real["test_dice"], color="k", ls=":", label="real-trained U-net")
    ax.set_xscale("log")
    ax.set_xlabel("ε spent (rightmost point: no DP)")
    ax.set_ylabel("synthetic-only test Dice")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
