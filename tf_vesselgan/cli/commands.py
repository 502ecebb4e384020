"""Subcommand handlers: turn parsed arguments into one library call each."""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

from tf_vesselgan.errors import UserError

def phantom(args) -> int:
    from tf_vesselgan.data.phantom import write_phantom_dataset
    from tf_vesselgan.utils.progress import atomic_output_dir

    t0 = time.perf_counter()
    with atomic_output_dir(args.out, overwrite=args.overwrite) as tmp:
        ids = write_phantom_dataset(tmp, cases=args.cases, shape=tuple(args.shape), seed=args.seed,
                                    inflow_mm=args.inflow_mm, fat=args.fat)
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

    cfg = ExperimentConfig()  # validation only: no patches are cut
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, n_vessel=0, n_random=0, patch_size=8))
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


FILE_SUFFIXES = (".npz", ".npy", ".nii", ".nii.gz", ".png")


def require_out_folder(path) -> None:
    """Refuses a sample --out that names a file: --out is the folder the pairs go into."""
    name = Path(path).name.lower()
    if name.endswith(FILE_SUFFIXES):
        raise UserError(f"--out is the folder the pairs are written into (samples.npz, NIfTI or PNG files inside); "
                        f"{path} looks like a file name")


def _gan_overrides(args) -> dict:
    g = {k: v for k, v in {"arch": args.arch, "epochs": args.epochs, "batch_size": args.batch_size,
                           "width": args.width, "steps_per_epoch": args.steps_per_epoch,
                           "max_seconds": getattr(args, "max_seconds", None)}.items() if v is not None}
    over = {"gan": g}
    if args.seed is not None:
        over["seed"] = args.seed
    return over


def train_gan(args) -> int:
    from tf_vesselgan.config import load_config
    from tf_vesselgan.training.run_folder import load_run_config

    over = _gan_overrides(args)
    if args.resume:
        if args.config is not None:
            raise UserError("--resume continues the run with its own config.yaml; --config cannot change it "
                            "(start a new run folder, or change --epochs/--max-seconds)")
        cfg = load_run_config(args.out, over)
    else:
        if args.arch is None and args.config is None:
            raise UserError("--arch is required (or a --config whose gan.arch is set)")
        cfg = load_config(args.config, over)
    require_dir(args.patches, "patches folder")
    from tf_vesselgan.training.gan_trainer import train_gan as run

    r = run(args.patches, args.out, cfg, resume=args.resume)
    if r["interrupted"]:
        print(f"train-gan: interrupted by {r['interrupted']} after {r['epochs_done']} complete epochs; "
              f"checkpoint saved; continue with --resume -> {args.out}")
        return 130 if r["interrupted"] == "SIGINT" else 143
    print(f"train-gan: {cfg.gan.arch}, {r['epochs_done']} epochs in {r['seconds']:.1f} s -> {args.out}")
    return 0


def sample(args) -> int:
    from tf_vesselgan.training.dp import dp_statement
    from tf_vesselgan.training.run_models import restore_generator
    from tf_vesselgan.training.run_folder import read_status
    from tf_vesselgan.training.sampling import generate_from_export, write_pairs, write_samples

    if args.threshold is not None and not -1.0 <= args.threshold <= 1.0:
        raise UserError(f"--threshold must be in [-1, 1] (the generator's tanh range), got {args.threshold}")
    if args.n <= 0:
        raise UserError(f"--n must be positive, got {args.n}")
    require_out_folder(args.out)
    if args.model is not None:
        if args.threshold is not None:
            raise UserError("--threshold cannot change an export's baked-in threshold; sample its run instead")
        require_dir(args.model, "exported model folder")
        t0 = time.perf_counter()
        batches, size, info = generate_from_export(args.model, args.n, args.seed)
        write_pairs(batches, args.n, size, args.out, {"seed": args.seed, "model": Path(args.model).name, **info},
                    args.format, args.overwrite)
        print(f"sample: {args.n} pairs ({args.format}) in {time.perf_counter() - t0:.1f} s -> {args.out}")
        return 0
    require_dir(args.run, "run folder")
    gen, cfg = restore_generator(args.run)
    thr = cfg.gan.label_threshold if args.threshold is None else args.threshold
    t0 = time.perf_counter()
    write_samples(gen, args.n, args.out, seed=args.seed, threshold=thr, fmt=args.format,
                  overwrite=args.overwrite, meta={"arch": cfg.gan.arch, "width": cfg.gan.width,
                                                  "differential_privacy": dp_statement(read_status(args.run))})
    print(f"sample: {args.n} pairs ({args.format}) in {time.perf_counter() - t0:.1f} s -> {args.out}")
    return 0


def info_model(args) -> int:
    from tf_vesselgan.models.critic import build_critic
    from tf_vesselgan.models.generator import build_generator

    try:
        g = build_generator(100, args.width, args.patch_size, upsample=args.upsample, label_head=args.label_head)
        d = build_critic(args.arch, args.width, args.patch_size, layout=args.critic_layout)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    head = ", label head of its own" if args.label_head == "image" else ""
    print(f"{args.arch} at width {args.width:g}, patch {args.patch_size} ({args.critic_layout} critic, "
          f"{args.upsample} upsampling{head}):")
    print(f"  generator {g.count_params():>12,d} parameters")
    print(f"  critic    {d.count_params():>12,d} parameters")
    return 0


def train_unet(args) -> int:
    import json

    from tf_vesselgan.config import load_config

    over = {"unet": {k: v for k, v in {"epochs": args.epochs, "width": args.width,
                                        "steps_per_epoch": args.steps_per_epoch}.items() if v is not None}}
    if args.seed is not None:
        over["seed"] = args.seed
    cfg = load_config(args.config, over)
    require_dir(args.patches, "patches folder")
    hparams = None
    if args.hparams:
        try:
            hparams = json.loads(Path(args.hparams).read_text())
        except (OSError, ValueError):
            raise UserError(f"--hparams {args.hparams}: not a readable JSON file") from None
    from tf_vesselgan.training.unet_trainer import train_unet as run

    r = run(args.train, args.patches, args.out, cfg, samples=args.samples, init=args.init, hparams=hparams)
    best = r["best_val_dice"]
    val = ("no validation patients (last epoch kept)" if math.isnan(best)
           else f"best validation patch Dice {best:.4f}")
    print(f"train-unet: {args.train}, {val}, {r['seconds']:.1f} s -> {args.out}")
    return 0


def segment(args) -> int:
    from tf_vesselgan.evaluation.evaluate import run_segmentation

    require_dir(args.model, "model run folder")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:  # also refuses NaN
        raise UserError(f"--threshold must be a probability in [0, 1], got {args.threshold}")
    s = run_segmentation(args.model, args.data, args.cases, args.out, evaluate=args.evaluate,
                         overwrite=args.overwrite, threshold=args.threshold)
    if args.evaluate:
        print(f"evaluate: {s['n']} patients, Dice {s['dice']['mean']:.4f} ± {s['dice']['sd']:.4f}, "
              f"95HD {s['hd95_mm']['mean']:.2f} ± {s['hd95_mm']['sd']:.2f} mm "
              f"(threshold-only upper bound Dice {s['threshold_baseline_dice']['mean']:.4f}) -> {args.out}")
    else:
        print(f"segment: {len(s['cases'])} cases in {s['seconds']:.1f} s -> {args.out}")
    return 0


def fid(args) -> int:
    import csv

    from tf_vesselgan.evaluation.fid import distance_table

    rows = distance_table(args.real, args.fake, args.features, args.n, args.inception_weights, args.seed)
    lines = [f"| synthetic | FID ({args.features}) | KID |", "|---|---|---|"]
    lines += [f"| {r['fake']} | {r['fid']:.3f} | {r['kid']:.5f} ± {r['kid_sd']:.5f} |" for r in rows]
    print("\n".join(lines))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "fid.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        (out / "fid.md").write_text("\n".join(lines) + "\n")
    return 0


def tune(args) -> int:
    from tf_vesselgan.config import load_config
    from tf_vesselgan.tuning.tuner import tune as run

    over = {"unet": {"max_trials": args.trials}} if args.trials else None
    cfg = load_config(args.config, over)
    require_dir(args.patches, "patches folder")
    r = run(args.train, args.patches, args.out, cfg, samples=args.samples, final=not args.no_final)
    best = ", ".join(f"{k} {v:.3g}" for k, v in r["best"].items())
    print(f"tune: {len(r['trials'])} trials, best {best} -> {args.out}/best_hparams.json")
    return 0


def privacy(args) -> int:
    from tf_vesselgan.privacy.audit import run_privacy

    require_dir(args.run, "run folder")
    require_dir(args.patches, "patches folder")
    if args.data:
        require_dir(args.data, "data folder")
    r = run_privacy(args.run, args.patches, args.out, n=args.n, seed=args.seed, samples=args.samples,
                    features=args.features, data_dir=args.data, export=args.export, n_attack=args.n_attack,
                    max_memorised=args.max_memorised, max_auc=args.max_auc, overwrite=args.overwrite)
    mem = r["memorisation"]["pixel"]
    att = ", ".join(f"{k.split(' (')[0]} AUC {a['auc']:.3f}" for k, a in r["membership"].items())
    print(f"privacy: {'FAIL' if r['verdict'] else 'PASS'}; {mem['memorised_fraction']:.1%} of samples below the "
          f"unseen-patient threshold; {att}; {len(r['identifiers'])} identifier findings; {r['seconds']:.0f} s "
          f"-> {args.out}/privacy.md")
    for reason in r["verdict"]:
        print(f"  {reason}")
    return 1 if r["verdict"] else 0


def export(args) -> int:
    from tf_vesselgan.serving.export import export_model, write_models_config

    require_dir(args.run, "run folder")
    t0 = time.perf_counter()
    final = export_model(args.run, args.out, name=args.name, version=args.version, threshold=args.threshold)
    name = args.name or Path(args.out).name
    msg = f"export: {name} version {final.name} -> {final} ({time.perf_counter() - t0:.1f} s)"
    if args.models_config:
        write_models_config(args.models_config, {name: args.base_path or str(Path(args.out).resolve())})
        msg += f"; listed in {args.models_config}"
    print(msg)
    return 0


def serve(args) -> int:
    from tf_vesselgan.serving.server import serve as run

    for flag, value in (("--timeout", args.timeout), ("--read-timeout", args.read_timeout)):
        if not 0.0 < value < 1e6:  # also refuses NaN
            raise UserError(f"{flag} must be a positive number of seconds, got {value}")
    return run(args.model_config, host=args.host, rest_port=args.rest_port, grpc_port=args.grpc_port,
               max_samples=args.max_samples, max_body=args.max_body, timeout=args.timeout,
               read_timeout=args.read_timeout, max_connections=args.max_connections)


def client_sample(args) -> int:
    from tf_vesselgan.serving.client import client_sample as run

    require_out_folder(args.out)
    t0 = time.perf_counter()
    run(args.n, args.seed, args.out, model=args.model, url=args.url, grpc=args.grpc, fmt=args.format,
        overwrite=args.overwrite, batch=args.batch)
    print(f"client sample: {args.n} pairs from {args.url or args.grpc} in {time.perf_counter() - t0:.1f} s -> {args.out}")
    return 0


def run(args) -> int:
    from tf_vesselgan.experiments.runner import run_experiment

    run_experiment(args.config, data=args.data, out=args.out, log=lambda m: print(m, flush=True),
                   transfer_data=args.transfer_data)
    return 0
