"""report.md for `vesselgan run`: Table 1 (FID/KID per GAN), Table 2 (Dice and 95HD of
every U-net on the validation and test patients, from the per-patient CSVs), Fig. 2-style
sample grids, training curves, and the privacy verdicts when audited."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from tf_vesselgan.config import ExperimentConfig, study_arms
from tf_vesselgan.experiments.layout import Layout
from tf_vesselgan.experiments.privacy_utility import privacy_utility_section
from tf_vesselgan.training.run_folder import has_status
from tf_vesselgan.utils.tables import read_rows


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mean_sd(rows, key):
    v = np.array([float(r[key]) for r in rows], np.float64)
    return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else 0.0)


def table2(out: Path, unets: list[str]) -> list[dict]:
    """Per U-net and split: mean ± sd over patients, computed from per_patient.csv."""
    rows = []
    for name in unets:
        row = {"unet": name}
        for split in ("val", "test"):
            path = Layout(out).evaluation(name, split) / "per_patient.csv"
            if not path.exists():
                continue
            patients = read_rows(path)
            row[f"{split}_n"] = len(patients)
            row[f"{split}_dice"], row[f"{split}_dice_sd"] = _mean_sd(patients, "dice")
            row[f"{split}_hd95_mm"], row[f"{split}_hd95_mm_sd"] = _mean_sd(patients, "hd95_mm")
            row[f"{split}_csv"] = str(path.relative_to(out))
        rows.append(row)
    return rows


def sample_grid(path: Path, out: Path, gans: list[str], k: int = 8) -> None:
    from tf_vesselgan.data.pipeline import make_dataset
    from tf_vesselgan.utils.grids import pair_grid
    from tf_vesselgan.training.sampling import load_samples

    rows, names = [], []
    at = Layout(out)
    real = next(iter(make_dataset(at.patches, "train", batch_size=k, mode="gan", seed=0))).numpy()
    rows.append(pair_grid(real, columns=k))
    names.append("real")
    for arch in gans:
        image, label = load_samples(at.samples(arch))
        rows.append(pair_grid(np.stack([image[:k], label[:k].astype(np.float32)], -1), columns=k))
        names.append(arch)
    plt = _plt()
    fig, axes = plt.subplots(len(rows), 1, figsize=(1.5 * k, 1.7 * len(rows)))
    for ax, grid, name in zip(np.atleast_1d(axes), rows, names):
        ax.imshow(grid)
        ax.set_axis_off()
        ax.set_title(name, fontsize=9, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def training_curves(path: Path, out: Path, gans: list[str], unets: list[str]) -> None:
    plt = _plt()
    at = Layout(out)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for arch in gans:
        h = at.gan(arch) / "history.csv"
        if h.exists():
            rows = read_rows(h)
            a.plot([float(r["d_loss"]) for r in rows], label=f"{arch} critic loss")
            a.plot([float(r["g_loss"]) for r in rows], ls="--", label=f"{arch} generator loss")
    a.set_xlabel("epoch")
    a.set_title("GAN losses")
    a.legend(fontsize=7)
    for name in unets:
        h = at.unet(name) / "history.csv"
        if h.exists():
            rows = read_rows(h)
            # Keras' CSVLogger writes val_* columns as "NA" when there was no validation data
            has_val = rows and rows[0].get("val_dice_metric", "NA") != "NA"
            key = "val_dice_metric" if has_val else "dice_metric"
            b.plot([float(r[key]) for r in rows], label=f"{name} ({key})")
    b.set_xlabel("epoch")
    b.set_title("U-net patch Dice")
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_transfer_report(out: Path, cfg: ExperimentConfig, data: Path, second: Path) -> Path:
    from tf_vesselgan.experiments.transfer import fig3, fig4, reference_row, second_train_patients, transfer_rows, usable_n

    at = Layout(out)
    ns = usable_n(cfg, second_train_patients(cfg, second))
    rows, ref = transfer_rows(out, ns), reference_row(out)
    with open(at.file("transfer.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["n", "arm", "patients", "test_dice", "test_hd95_mm", "csv"])
        w.writeheader()
        w.writerows(rows)
    plt = _plt()
    fig3(at.file("fig3_transfer.png"), rows, ref, plt)
    fig4(at.file("fig4_error_maps.png"), out, second, ns[0], plt)
    arch = cfg.study.gans[0]
    lines = [f"# {cfg.name}: transfer-learning study", "",
             f"Pre-training: a U-net on {cfg.study.n_samples} synthetic pairs of the {arch} GAN trained on `{data}`. "
             f"Second data set `{second}`: U-nets on its first n training patients, from scratch or fine-tuned from "
             "the pre-trained U-net, evaluated on its test patients. From the per-patient CSVs linked.", "",
             "| n | arm | test Dice | test 95HD (mm) | per-patient CSV |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['n']} | {r['arm']} | {r['test_dice']:.3f} | {r['test_hd95_mm']:.3f} | [csv]({r['csv']}) |")
    if ref:
        lines.append(f"| all | reference (from scratch) | {ref['test_dice']:.3f} | {ref['test_hd95_mm']:.3f} | "
                     f"[csv]({ref['csv']}) |")
    lines += ["", "Also `transfer.csv`.", "", "![Dice and 95HD vs n](fig3_transfer.png)", "",
              "![error maps](fig4_error_maps.png)", ""]
    at.file("report.md").write_text("\n".join(lines) + "\n")
    return at.file("report.md")


def _curve_section(out: Path, cfg: ExperimentConfig) -> list[str]:
    """The quality-vs-time table and figure, when the study has curve points."""
    from tf_vesselgan.experiments.curve import test_summary, curve_rows, write_curve

    if not cfg.study.curve_minutes:
        return []
    rows = curve_rows(out, cfg, study_arms(cfg))
    if not rows:
        return []
    real = test_summary(Layout(out).evaluation(Layout.unet_name("real"), "test"))
    write_curve(out, rows, real, _plt())
    lines = ["", "## Quality vs GAN training time", "",
             "Synthetic-only U-net test Dice per GAN snapshot (machine-minutes = process CPU time / cores), "
             f"same U-net recipe as the real one (test Dice {real['test_dice']:.3f}).", "",
             "| GAN | machine-minutes | snapshot | label threshold | FID | test Dice | ratio to real |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        fid = f"{r['fid']:.2f}" if r.get("fid") is not None else "–"
        ratio = f"{r['ratio_to_real']:.2f}" if r.get("ratio_to_real") is not None else "–"
        lines.append(f"| {r['gan']} | {r['minutes']:.1f} | `{r['snapshot']}` | {float(r['label_threshold']):.3f} | "
                     f"{fid} | {r['test_dice']:.3f} ± {r['test_dice_sd']:.3f} | {ratio} |")
    return lines + ["", "From [curve.csv](curve.csv).", "", "![quality vs time](curve.png)"]


def write_report(out: Path, cfg: ExperimentConfig, data: Path, second: Path | None = None) -> Path:
    st = cfg.study
    if st.kind == "transfer":
        return write_transfer_report(out, cfg, data, second)
    at = Layout(out)
    arms = list(study_arms(cfg))
    train = "synthetic" if st.kind == "anonymization" else "both"
    unets = [Layout.unet_name("real")] + [Layout.unet_name(train, a) for a in arms]
    t2 = table2(out, unets)
    if t2:
        with open(at.file("table2.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=sorted({k for r in t2 for k in r}, key=lambda k: (k != "unet", k)))
            w.writeheader()
            w.writerows(t2)
    sample_grid(at.file("fig2_samples.png"), out, arms)
    training_curves(at.file("training_curves.png"), out, arms, unets)
    lines = [f"# {cfg.name}: {st.kind} study", "",
             f"Data `{data}`; GANs {', '.join(arms)} at width {cfg.gan.width:g}; U-nets at width "
             f"{cfg.unet.width:g}; seed {cfg.seed}. Every number below is computed by this run from the files "
             "linked next to it.", ""]
    lines += _table2_section(t2) + _fid_section(at) + _privacy_section(at, arms) + _curve_section(out, cfg)
    if st.dp_epsilons:
        lines += privacy_utility_section(out, cfg, _plt())
    lines += ["", "## Figures", "", "Synthetic pairs per GAN next to real training pairs (label in red):", "",
              "![samples](fig2_samples.png)", "", "![training curves](training_curves.png)", "",
              "Run folders: " + ", ".join(f"`{p.name}`" for p in sorted(out.iterdir())
                                         if p.is_dir() and has_status(p)) + "."]
    at.file("report.md").write_text("\n".join(lines) + "\n")
    return at.file("report.md")


def _table2_section(t2: list[dict]) -> list[str]:
    lines = ["## Table 2: segmentation (mean ± sd over patients)", "",
             "| U-net trained on | val Dice | val 95HD (mm) | test Dice | test 95HD (mm) | test Dice ÷ real's "
             "| per-patient CSVs |",
             "|---|---|---|---|---|---|---|"]
    real = next((r.get("test_dice") for r in t2 if r["unet"] == "real"), None)

    def cell(r, split, key):
        return f"{r[f'{split}_{key}']:.3f} ± {r[f'{split}_{key}_sd']:.3f}" if f"{split}_{key}" in r else "–"

    def ratio(r):
        return f"{r['test_dice'] / real:.2f}" if real and "test_dice" in r else "–"

    for r in t2:
        links = ", ".join(f"[{s}]({r[f'{s}_csv']})" for s in ("val", "test") if f"{s}_csv" in r)
        lines.append(f"| {r['unet']} | {cell(r, 'val', 'dice')} | {cell(r, 'val', 'hd95_mm')} | "
                     f"{cell(r, 'test', 'dice')} | {cell(r, 'test', 'hd95_mm')} | {ratio(r)} | {links} |")
    return lines


def _fid_section(at: Layout) -> list[str]:
    lines = ["", "## Table 1: distribution distance of the samples (U-net encoder features)", ""]
    fid_csv, skipped = at.fid / "fid.csv", at.fid / "skipped.txt"
    if fid_csv.exists():
        lines += ["| GAN | FID | KID |", "|---|---|---|"]
        for r in read_rows(fid_csv):
            lines.append(f"| {r['gan']} | {float(r['fid']):.3f} | {float(r['kid']):.5f} ± {float(r['kid_sd']):.5f} |")
        rel = fid_csv.relative_to(at.out)
        lines.append(f"\nFrom [{rel}]({rel}).")
    else:
        lines.append("Not computed: " + skipped.read_text().strip() if skipped.exists() else "Not computed.")
    return lines


def _privacy_section(at: Layout, gans: list[str]) -> list[str]:
    audits = [(a, at.privacy(a) / "privacy.json") for a in gans]
    audits = [(a, p) for a, p in audits if p.exists()]
    if not audits:
        return []
    lines = ["", "## Privacy audit", "", "| GAN | verdict | samples below unseen-patient threshold | "
             "distance attack AUC | critic attack AUC | report |", "|---|---|---|---|---|---|"]
    for arch, p in audits:
        r = json.loads(p.read_text())
        mem = r["memorisation"]["pixel"]["memorised_fraction"]
        aucs = [f"{a['auc']:.3f}" for a in r["membership"].values()]
        link = (p.parent / "privacy.md").relative_to(at.out)
        lines.append(f"| {arch} | {'FAIL' if r['verdict'] else 'PASS'} | {mem:.1%} | {aucs[0]} | "
                     f"{aucs[1] if len(aucs) > 1 else '–'} | [privacy.md]({link}) |")
    return lines
