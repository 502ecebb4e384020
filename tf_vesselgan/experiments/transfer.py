"""The transfer-learning study (Kossen et al., Fig. 3): U-nets on n training patients of
a second data set, from scratch vs fine-tuned from the U-net pre-trained on synthetic
pairs, for every n in `study.transfer_n`; a reference trained on all its patients."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np

from tf_vesselgan.config import ExperimentConfig
from tf_vesselgan.errors import UserError
from tf_vesselgan.experiments.layout import Layout
from tf_vesselgan.utils.tables import read_rows


def transfer_stages(cfg: ExperimentConfig, out: Path, second: Path, pretrained: Path, pretrained_key: str) -> list:
    """The second data set's stages. Each stage's input key covers what it reads: the
    second data set (its folder, or the seed of its phantom), the data and U-net config
    sections, the seed, n, and for the fine-tuned U-nets `pretrained_key`, so a new n
    adds stages and a new pre-training redoes only the pre-trained arms."""
    from tf_vesselgan.data.build import build_patches, read_manifest
    from tf_vesselgan.evaluation.evaluate import run_segmentation, tuning_key
    from tf_vesselgan.experiments.runner import Stage, inputs_key
    from tf_vesselgan.training.unet_trainer import train_unet

    st = cfg.study
    at = Layout(out)
    stages = []
    source = second.resolve()
    if st.transfer_phantom_cases:
        from tf_vesselgan.data.phantom import write_phantom_dataset

        phantom_seed = cfg.seed + 1000

        def phantom():
            shutil.rmtree(at.second_phantom, ignore_errors=True)
            write_phantom_dataset(at.second_phantom, cases=st.transfer_phantom_cases, seed=phantom_seed,
                                  progress=False)

        source = inputs_key("phantom", st.transfer_phantom_cases, phantom_seed)
        stages.append(Stage("second data set (phantom)", at.second_phantom, phantom, source))
    full = at.transfer_patches()
    full_key = inputs_key("patches", cfg.data, cfg.seed, source)
    stages.append(Stage("second data set: patches", full,
                        lambda: build_patches(second, full, cfg, overwrite=True, progress=False), full_key))

    def unet_and_eval(tag: str, patches: Path, patches_key: str, init, init_key):
        folder, evaluation = at.transfer_unet(tag), at.transfer_evaluation(tag)
        unet_key = inputs_key("transfer unet", patches_key, cfg.unet, cfg.seed, init_key)

        def unet():
            shutil.rmtree(folder, ignore_errors=True)
            train_unet("real", patches, folder, cfg, init=init, verbose=2)

        def evaluate():
            run_segmentation(folder, second, "test", evaluation, evaluate=True, overwrite=True, progress=False)

        return [Stage(f"transfer U-net {tag}", folder, unet, unet_key),
                Stage(f"transfer evaluate {tag}", evaluation, evaluate, inputs_key("transfer evaluate", unet_key,
                                                                                     source, *tuning_key(cfg.unet)))]

    stages += unet_and_eval(Layout.transfer_tag("reference"), full, full_key, None, None)
    for n in st.transfer_n:
        sub = at.transfer_patches(n)
        sub_key = inputs_key("transfer patches", full_key, n)

        def patches_n(n=n, sub=sub):
            m = read_manifest(full)
            pool = m["splits"]["train"]
            if n > len(pool):
                raise UserError(f"study.transfer_n: n={n} exceeds the second data set's {len(pool)} training "
                                "patients")  # usable_n filters these in plan
            split = dataclasses.replace(cfg.data.split, train_cases=pool[:n], val_cases=m["splits"]["val"],
                                        test_cases=m["splits"]["test"])
            sub_cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, split=split))
            build_patches(second, sub, sub_cfg, overwrite=True, progress=False)

        stages.append(Stage(f"transfer patches n={n}", sub, patches_n, sub_key))
        stages += unet_and_eval(Layout.transfer_tag("scratch", n), sub, sub_key, None, None)
        stages += unet_and_eval(Layout.transfer_tag("pretrained", n), sub, sub_key, pretrained, pretrained_key)
    return stages


def second_train_patients(cfg: ExperimentConfig, second: Path) -> int:
    """Training patients the second data set will have (its split is the configured one)."""
    from tf_vesselgan.data.nifti import discover_cases
    from tf_vesselgan.data.phantom import phantom_case_ids
    from tf_vesselgan.data.split import split_cases

    if cfg.study.transfer_phantom_cases:
        ids = phantom_case_ids(cfg.study.transfer_phantom_cases)
    else:
        ids = [c.case_id for c in discover_cases(second)[0]]
    return len(split_cases(ids, cfg.data.split, cfg.seed)["train"])


def usable_n(cfg: ExperimentConfig, n_train: int) -> list[int]:
    """The configured n capped by the second data set's training patients."""
    return sorted({n for n in cfg.study.transfer_n if 1 <= n <= n_train})


def transfer_rows(out: Path, ns: list[int]) -> list[dict]:
    rows = []
    for n in ns:
        for arm in ("scratch", "pretrained"):
            path = Layout(out).transfer_evaluation(Layout.transfer_tag(arm, n)) / "per_patient.csv"
            if path.exists():
                p = read_rows(path)
                rows.append({"n": n, "arm": arm, "patients": len(p),
                             "test_dice": float(np.mean([float(r["dice"]) for r in p])),
                             "test_hd95_mm": float(np.mean([float(r["hd95_mm"]) for r in p])),
                             "csv": str(path.relative_to(out))})
    return rows


def reference_row(out: Path) -> dict | None:
    path = Layout(out).transfer_evaluation(Layout.transfer_tag("reference")) / "per_patient.csv"
    if not path.exists():
        return None
    p = read_rows(path)
    return {"test_dice": float(np.mean([float(r["dice"]) for r in p])),
            "test_hd95_mm": float(np.mean([float(r["hd95_mm"]) for r in p])), "csv": str(path.relative_to(out))}


def fig3(path: Path, rows: list[dict], ref: dict | None, plt) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "test_dice", "test Dice"), (axes[1], "test_hd95_mm", "test 95HD (mm)")):
        for arm, style in (("scratch", "o-"), ("pretrained", "s-")):
            pts = [(r["n"], r[key]) for r in rows if r["arm"] == arm]
            if pts:
                ax.plot(*zip(*pts), style, label=f"{'from scratch' if arm == 'scratch' else 'pre-trained on synthetic'}")
        if ref is not None:
            ax.axhline(ref[key], color="k", ls=":", label="all training patients (reference)")
        ax.set_xlabel("training patients n")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def fig4(path: Path, out: Path, second: Path, n: int, plt) -> None:
    """TP red, FP green, FN yellow on the axial slice with most vessel voxels of the
    first test patient, scratch vs pre-trained at the smallest n."""
    import nibabel as nib

    evals = {arm: Layout(out).transfer_evaluation(Layout.transfer_tag(arm, n)) for arm in ("scratch", "pretrained")}
    rows = read_rows(evals["scratch"] / "per_patient.csv")
    cid = rows[0]["case"]
    from tf_vesselgan.data.nifti import discover_cases

    case = {c.case_id: c for c in discover_cases(second)[0]}[cid]  # either data layout
    truth = np.asarray(nib.load(str(case.label)).dataobj) > 0
    image = np.asarray(nib.load(str(case.image)).dataobj, np.float32)
    z = int(np.argmax(truth.sum(axis=(0, 1))))
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.8))
    for ax, (arm, folder) in zip(axes, evals.items()):
        pred = np.asarray(nib.load(str(folder / f"{cid}_segmentation.nii.gz")).dataobj) > 0
        sl = image[..., z]
        grey = (sl - sl.min()) / max(float(np.ptp(sl)), 1e-6)
        rgb = np.repeat(grey[..., None], 3, -1)
        p, t = pred[..., z], truth[..., z]
        rgb[p & t] = (1, 0, 0)
        rgb[p & ~t] = (0, 1, 0)
        rgb[~p & t] = (1, 1, 0)
        ax.imshow(np.transpose(rgb, (1, 0, 2)), origin="lower")
        ax.set_title(f"{'from scratch' if arm == 'scratch' else 'pre-trained'}, n={n}: {cid}, slice {z}", fontsize=8)
        ax.set_axis_off()
    fig.suptitle("TP red, FP green, FN yellow", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
