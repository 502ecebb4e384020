"""Subcommand handlers: turn parsed arguments into one library call each."""
from __future__ import annotations

import time
from pathlib import Path

from tf_vesselgan.errors import UserError

EXTRA_PARSERS: list = []  # later stages register their sub-parsers here


def phantom(args) -> int:
    from tf_vesselgan.data.phantom import write_phantom_dataset
    from tf_vesselgan.utils.progress import atomic_output_dir

    t0 = time.perf_counter()
    with atomic_output_dir(args.out, overwrite=args.overwrite) as tmp:
        ids = write_phantom_dataset(tmp, cases=args.cases, shape=tuple(args.shape), seed=args.seed)
    print(f"phantom: {len(ids)} cases of {tuple(args.shape)} in {time.perf_counter() - t0:.1f} s -> {args.out}")
    return 0


def patches(args) -> int:
    from tf_vesselgan.config import load_config

    cfg = load_config(args.config)
    from tf_vesselgan.data.build import build_patches

    m = build_patches(args.data, args.out, cfg, seed=args.seed, overwrite=args.overwrite)
    parts = ", ".join(f"{k} {len(v)}" for k, v in m["splits"].items())
    total = sum(m["counts"].values())
    print(f"patches: {len(m['cases'])} cases ({parts}), {total} patches in {m['seconds']:.1f} s -> {args.out}")
    return 0


def info(args) -> int:
    from tf_vesselgan.config import ExperimentConfig
    from tf_vesselgan.data.build import validate_dataset

    cfg = ExperimentConfig()
    cfg = type(cfg)(data=type(cfg.data)(n_vessel=0, n_random=0, patch_size=8))
    cases, layout, infos = validate_dataset(args.data, cfg, progress=False)
    print(f"{len(cases)} cases, layout '{layout}'")
    print(f"{'case':<24} {'shape':<16} {'spacing (mm)':<20} {'vessel %':>9}  intensity range")
    for cid, s in infos.items():
        shape = "x".join(map(str, s["shape"]))
        spacing = "x".join(f"{v:g}" for v in s["spacing"])
        lo, hi = s["intensity_range"]
        print(f"{cid:<24} {shape:<16} {spacing:<20} {100 * s['vessel_fraction']:>8.3f}%  [{lo:g}, {hi:g}]")
    return 0


def require_dir(path, what: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise UserError(f"{what} {p} does not exist")
    return p
