"""`vesselgan patches`: validate every case, split by patient, cut patches, write shards.

Output folder (written to a temporary folder, renamed into place at the end):
`<split>-NNNNN-of-NNNNN.tfrecord` shards, `manifest.json`, `config.yaml`.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from tf_vesselgan.config import ExperimentConfig, config_hash, save_config
from tf_vesselgan.data.nifti import discover_cases, load_volume
from tf_vesselgan.data.patches import auto_brain_mask, case_rng, extract_patches, sample_centres
from tf_vesselgan.data.split import split_cases
from tf_vesselgan.errors import DataError
from tf_vesselgan.utils.progress import atomic_output_dir, progress_bar

log = logging.getLogger(__name__)
MANIFEST_FORMAT = "tf_vesselgan.patches/1"


def validate_dataset(data_dir, cfg: ExperimentConfig, progress: bool = True):
    """Finds and validates every case; returns (cases, layout, per-case summaries)."""
    d = cfg.data
    cases, layout = discover_cases(data_dir)
    infos = {}
    for case in progress_bar(cases, desc="validate", unit="case", enable=progress):
        vol = load_volume(case, d.label_map, min_xy=d.patch_size, need_vessels=d.n_vessel)
        infos[case.case_id] = summarize(vol)
    return cases, layout, infos


def summarize(vol) -> dict:
    return {
        "shape": list(vol.image.shape),
        "spacing": [round(s, 6) for s in vol.spacing],
        "vessel_fraction": float(np.count_nonzero(vol.label) / vol.label.size),
        "intensity_range": [float(vol.image.min()), float(vol.image.max())],
        "mask": "given" if vol.mask is not None else "auto",
    }


def build_patches(data_dir, out_dir, cfg: ExperimentConfig, seed: int | None = None,
                  overwrite: bool = False, progress: bool = True) -> dict:
    """Runs the whole data stage; returns the manifest.

    Raises:
        DataError / ConfigError / UserError: bad data, bad config, existing output.
    """
    from tf_vesselgan.data.records import ShardWriter

    t0 = time.perf_counter()
    seed = cfg.seed if seed is None else seed
    d = cfg.data
    if Path(out_dir).exists() and not overwrite:
        raise DataError(f"output folder {out_dir} already exists (use --overwrite to replace it)")
    cases, layout, infos = validate_dataset(data_dir, cfg, progress)
    by_id = {c.case_id: c for c in cases}
    splits = split_cases(list(by_id), d.split, seed)
    manifest = {
        "format": MANIFEST_FORMAT, "layout": layout, "patch_size": d.patch_size, "n_vessel": d.n_vessel,
        "n_random": d.n_random, "seed": seed, "config_hash": config_hash(d), "compression": d.compression,
        "splits": splits, "counts": {}, "shards": {},
        "cases": {cid: {**infos[cid], "split": s} for s, ids in splits.items() for cid in ids},
    }
    per_case = d.n_vessel + d.n_random
    moments = np.zeros(3)  # sum, sum of squares, count of the training patches' voxels
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        bar = progress_bar(total=sum(len(ids) for ids in splits.values()), desc="patches", unit="case",
                           enable=progress)
        for split, ids in splits.items():
            writer = ShardWriter(tmp, split, len(ids) * per_case, d.shard_size, d.compression)
            for index, cid in enumerate(ids):
                images = _write_case(writer, by_id[cid], index, d, seed)
                if split == "train":
                    moments += (images.sum(dtype=np.float64), np.square(images, dtype=np.float64).sum(), images.size)
                bar.update(1)
            manifest["shards"][split] = writer.close()
            manifest["counts"][split] = len(ids) * per_case
        bar.close()
        mean = moments[0] / max(moments[2], 1)
        std = float(np.sqrt(max(moments[1] / max(moments[2], 1) - mean**2, 0.0)))
        manifest["normalization"] = {"gan": "per-patch min-max to [-1, 1]", "unet": d.unet_normalization,
                                     "mean": float(mean), "std": std, "computed_on": "train"}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        save_config(cfg, tmp / "config.yaml")
    manifest["seconds"] = time.perf_counter() - t0
    return manifest


def _write_case(writer, case, index: int, d, seed: int) -> np.ndarray:
    """Samples one case's patch centres, writes its patches; returns the image patches."""
    from tf_vesselgan.data.records import encode

    # Read again rather than kept from validation: memory stays one case, whatever the
    # data set's size (a gz volume reads in well under 1 s).
    vol = load_volume(case, d.label_map)
    mask = vol.mask if vol.mask is not None else auto_brain_mask(vol.image)
    rng = case_rng(seed, case.case_id)
    try:
        centres, kinds = sample_centres(vol.label, mask, d.n_vessel, d.n_random, rng)
    except ValueError as exc:
        raise DataError(f"case '{case.case_id}': {exc}") from None
    order = rng.permutation(len(centres))  # mix kinds across shards
    images, labels = extract_patches(vol.image, vol.label, centres[order], d.patch_size)
    for img, lab, kind in zip(images, labels, kinds[order]):
        writer.write(encode(img, lab, kind, index))
    return images


def read_manifest(patches_dir) -> dict:
    """Reads and checks a patches folder's manifest."""
    path = Path(patches_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{patches_dir} is not a patches folder (no manifest.json); run `vesselgan patches` first") from None
    except ValueError:
        raise DataError(f"{path} is not valid JSON") from None
    if manifest.get("format") != MANIFEST_FORMAT:
        raise DataError(f"{path}: unknown format {manifest.get('format')!r}")
    return manifest
