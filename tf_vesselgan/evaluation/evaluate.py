"""`vesselgan segment` / `evaluate`: whole volumes → NIfTI predictions → per-patient metrics.

Per-patient CSV (case, dice, hd95_mm, precision, recall, empty flags, and the best
possible global-threshold Dice as a baseline) and a summary (mean ± sd over patients).
"""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from tf_vesselgan.data.nifti import discover_cases, load_volume
from tf_vesselgan.data.patches import auto_brain_mask
from tf_vesselgan.errors import UserError
from tf_vesselgan.evaluation.inference import remove_small_components, segment_case
from tf_vesselgan.evaluation.metrics import case_metrics, dice
from tf_vesselgan.utils.progress import atomic_output_dir, progress_bar


def select_cases(spec: str, status: dict, available: list[str]) -> list[str]:
    """`test`/`val`/`train` (the model's recorded split), `all`, or a comma list of ids."""
    if spec in ("test", "val", "train"):
        ids = status.get("splits", {}).get(spec, [])
        if not ids:
            raise UserError(f"--cases {spec}: the model's run folder records no {spec} cases")
    elif spec == "all":
        ids = available
    else:
        ids = [c.strip() for c in spec.split(",") if c.strip()]
        if not ids:
            raise UserError(f"--cases {spec!r}: no case ids given (test|val|train|all|ID,ID,...)")
    missing = [c for c in ids if c not in available]
    if missing:
        raise UserError(f"case '{missing[0]}' is not in the data folder")
    return ids


def threshold_baseline(image: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Best Dice any single global intensity threshold inside the mask reaches (an upper
    bound for thresholding, chosen with the truth)."""
    vals = image[mask]
    best = 0.0
    for t in np.percentile(vals, np.linspace(90, 99.99, 40)):
        best = max(best, dice((image > t) & mask, truth))
    return best


# 0.05 … 0.95, then finer towards 1: a U-net trained on vessel-rich patches is often
# confidently wrong at vessel borders, and its best volume threshold can sit above 0.95;
# one trained on synthetic pairs only, above 0.99 (ICBM: the validation patient's best
# at 0.995, README "Synthetic pairs per CPU-minute")
THRESHOLD_GRID = np.concatenate([np.round(np.arange(0.05, 0.96, 0.05), 2), [0.97, 0.98, 0.99, 0.995, 0.998, 0.999]])


def tuning_key(unet_cfg) -> tuple:
    """What an evaluation's threshold depends on beyond the model, for stage input keys:
    the grid when thresholds are tuned, nothing otherwise (so untuned keys stay as they were)."""
    return ("threshold grid", THRESHOLD_GRID.tolist()) if unet_cfg.tune_threshold else ()


def threshold_is_tuned(status: dict) -> bool:
    """True when run.json holds a threshold tuned on the current grid (one tuned on an
    older grid is tuned again)."""
    return "tuned_threshold" in status and status.get("tuned_threshold_grid") == THRESHOLD_GRID.tolist()


def threshold_dice(model, status: dict, cfg, case, thresholds) -> np.ndarray:
    """Dice of one case's segmentation at each probability threshold (the volume is
    segmented once; components below unet.min_component_voxels removed, as `segment` does)."""
    vol = load_volume(case, cfg.data.label_map)
    mask = vol.mask if vol.mask is not None else auto_brain_mask(vol.image)
    prob = segment_case(model, vol.image, mask, status, cfg.unet)
    truth = vol.label.astype(bool)
    return np.array([dice(remove_small_components(prob > t, cfg.unet.min_component_voxels), truth)
                     for t in thresholds])


def tune_threshold(model, status: dict, cfg, by_id: dict, model_run, progress: bool = True) -> float:
    """The probability threshold maximising mean Dice over the validation patients
    (THRESHOLD_GRID, 0.05…0.999), stored with the grid in the model's run.json so every
    later run uses it."""
    from tf_vesselgan.training.run_folder import write_status

    ids = status.get("splits", {}).get("val", [])
    if not ids or any(c not in by_id for c in ids):
        raise UserError("unet.tune_threshold needs the model's validation patients in the data folder")
    scores = np.zeros(len(THRESHOLD_GRID))
    for cid in progress_bar(ids, desc="tune threshold", unit="case", enable=progress):
        scores += threshold_dice(model, status, cfg, by_id[cid], THRESHOLD_GRID)
    best = float(THRESHOLD_GRID[int(np.argmax(scores))])
    write_status(Path(model_run), tuned_threshold=best, tuned_threshold_val_dice=float(scores.max() / len(ids)),
                 tuned_threshold_grid=THRESHOLD_GRID.tolist())
    return best


def _write_like(path: Path, data: np.ndarray, ref: nib.Nifti1Image, dtype) -> None:
    hdr = ref.header.copy()
    hdr.set_data_dtype(dtype)
    hdr["descrip"] = b"tf_vesselgan prediction"
    img = nib.Nifti1Image(data.astype(dtype), ref.affine, header=hdr)
    img.set_sform(ref.affine, code=int(ref.header["sform_code"]) or 1)
    img.set_qform(ref.affine, code=int(ref.header["qform_code"]) or 1)
    img.header.set_slope_inter(1, 0)
    nib.save(img, str(path))


def run_segmentation(model_run, data_dir, cases_spec: str, out, evaluate: bool, overwrite: bool = False,
                     threshold: float | None = None, progress: bool = True) -> dict:
    from tf_vesselgan.training.run_folder import load_run_config
    from tf_vesselgan.training.unet_trainer import load_unet

    model, status = load_unet(model_run)
    cfg = load_run_config(model_run)
    cases, _ = discover_cases(data_dir)
    by_id = {c.case_id: c for c in cases}
    if threshold is None and cfg.unet.tune_threshold and not threshold_is_tuned(status):
        status["tuned_threshold"] = tune_threshold(model, status, cfg, by_id, model_run, progress)
    thr = threshold if threshold is not None else status.get("tuned_threshold", status.get("threshold", 0.5))
    ids = select_cases(cases_spec, status, list(by_id))
    rows = []
    t0 = time.perf_counter()
    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        for cid in progress_bar(ids, desc="segment", unit="case", enable=progress):
            vol = load_volume(by_id[cid], cfg.data.label_map)
            mask = vol.mask if vol.mask is not None else auto_brain_mask(vol.image)
            prob = segment_case(model, vol.image, mask, status, cfg.unet)
            seg = remove_small_components(prob > thr, cfg.unet.min_component_voxels)
            ref = nib.load(str(by_id[cid].image))
            _write_like(tmp / f"{cid}_probability.nii.gz", prob, ref, np.float32)
            _write_like(tmp / f"{cid}_segmentation.nii.gz", seg, ref, np.uint8)
            if evaluate:
                m = case_metrics(seg, vol.label.astype(bool), vol.spacing)
                m["threshold_baseline_dice"] = threshold_baseline(vol.image, vol.label.astype(bool), mask)
                rows.append({"case": cid, **m})
        summary = {"model": str(model_run), "cases": ids, "threshold": thr, "seconds": time.perf_counter() - t0}
        if evaluate:
            summary.update(summarize_rows(rows))
            write_csv(tmp / "per_patient.csv", rows)
            (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
            (tmp / "summary.md").write_text(summary_markdown(summary))
    return summary


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})


def summarize_rows(rows: list[dict]) -> dict:
    out = {"n": len(rows), "pred_empty_cases": sum(r["pred_empty"] for r in rows),
           "truth_empty_cases": sum(r["truth_empty"] for r in rows)}
    for k in ("dice", "hd95_mm", "precision", "recall", "threshold_baseline_dice"):
        v = np.array([r[k] for r in rows], np.float64)
        out[k] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0}
    return out


def summary_markdown(s: dict) -> str:
    lines = [f"# Evaluation of {s['model']}", "",
             f"{s['n']} patients: {', '.join(s['cases'])}; threshold {s['threshold']:g}", "",
             "| metric | mean ± sd |", "|---|---|"]
    for k in ("dice", "hd95_mm", "precision", "recall", "threshold_baseline_dice"):
        lines.append(f"| {k} | {s[k]['mean']:.4f} ± {s[k]['sd']:.4f} |")
    lines += ["", f"Empty predictions: {s['pred_empty_cases']}; empty ground truths: {s['truth_empty_cases']} "
              "(scored by the empty-mask policy in tf_vesselgan/evaluation/metrics.py, never dropped).",
              "threshold_baseline_dice: the best Dice of any single global intensity threshold "
              "inside the mask, chosen with the ground truth (an upper bound for thresholding)."]
    return "\n".join(lines) + "\n"
