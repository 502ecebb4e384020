"""Stages of an experiment, run in order; a stage whose output folder carries a
completion marker for the same config is skipped, so an interrupted run resumes.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

from tf_vesselgan.config import ExperimentConfig, config_hash, load_config, study_gan_config
from tf_vesselgan.errors import UserError

MARKER = ".stage.json"


@dataclasses.dataclass
class Stage:
    name: str
    folder: Path
    action: object  # callable() -> None, writes into `folder`

    def done(self, key: str) -> bool:
        m = self.folder / MARKER
        return m.exists() and json.loads(m.read_text()).get("config") == key

    def mark(self, key: str, seconds: float) -> None:
        (self.folder / MARKER).write_text(json.dumps({"stage": self.name, "config": key, "seconds": seconds}))


def plan(cfg: ExperimentConfig, data: Path, out: Path, second: Path | None = None) -> list[Stage]:
    """The stages of `cfg.study.kind`, in the order data flows."""
    from tf_vesselgan.data.build import build_patches, read_manifest
    from tf_vesselgan.evaluation.evaluate import run_segmentation
    from tf_vesselgan.training.dp import dp_statement
    from tf_vesselgan.training.gan_trainer import restore_generator, train_gan
    from tf_vesselgan.training.run_folder import read_status
    from tf_vesselgan.training.sampling import write_samples
    from tf_vesselgan.training.unet_trainer import train_unet

    st = cfg.study
    stages: list[Stage] = []
    for arch in st.gans:
        study_gan_config(cfg, arch)  # reject bad overrides before any work
    if st.curve_minutes and not cfg.gan.snapshot_every:
        raise UserError("study.curve_minutes needs gan.snapshot_every > 0 (the curve samples snapshots)")
    if st.phantom_cases:
        from tf_vesselgan.data.phantom import write_phantom_dataset

        def phantom():
            shutil.rmtree(out / "phantom", ignore_errors=True)
            write_phantom_dataset(out / "phantom", cases=st.phantom_cases, seed=cfg.seed)

        stages.append(Stage("phantom", out / "phantom", phantom))
    patches = out / "patches"
    stages.append(Stage("patches", patches, lambda: build_patches(data, patches, cfg, overwrite=True, progress=False)))
    for arch in st.gans:
        run = out / f"gan_{arch}"

        def gan(run=run, arch=arch):
            resume = (run / "config.yaml").exists()
            r = train_gan(patches, run, study_gan_config(cfg, arch), resume=resume, verbose=2)
            if r["interrupted"]:
                raise KeyboardInterrupt

        def samples(run=run, arch=arch):
            gen, gcfg = restore_generator(run)
            write_samples(gen, st.n_samples, out / f"samples_{arch}", seed=cfg.seed, threshold=gcfg.gan.label_threshold,
                          overwrite=True, progress=False,
                          meta={"arch": arch, "width": gcfg.gan.width, "differential_privacy": dp_statement(read_status(run))})

        stages += [Stage(f"gan {arch}", run, gan), Stage(f"samples {arch}", out / f"samples_{arch}", samples)]
    if st.kind == "transfer":
        return stages + _transfer_plan(cfg, out, patches, second)
    unets = {"real": ("real", None)}
    for arch in st.gans:
        if st.kind == "anonymization":
            unets[f"synthetic_{arch}"] = ("synthetic", out / f"samples_{arch}")
        else:
            unets[f"both_{arch}"] = ("both", out / f"samples_{arch}")
    for name, (train, samples_path) in unets.items():
        folder = out / f"unet_{name}"

        def unet(folder=folder, train=train, samples_path=samples_path):
            shutil.rmtree(folder, ignore_errors=True)
            train_unet(train, patches, folder, cfg, samples=samples_path, verbose=2)

        stages.append(Stage(f"unet {name}", folder, unet))
    splits = ["val", "test"]

    def evaluations():
        counts = read_manifest(patches)["counts"]
        return [s for s in splits if counts.get(s, 0) > 0]

    for name in unets:
        for split in splits:
            folder = out / f"eval_{name}_{split}"

            def evaluate(folder=folder, name=name, split=split):
                if split not in evaluations():
                    folder.mkdir(parents=True, exist_ok=True)  # nothing to evaluate: an empty, complete stage
                    return
                run_segmentation(out / f"unet_{name}", data, split, folder, evaluate=True, overwrite=True,
                                 progress=False)

            stages.append(Stage(f"evaluate {name} on {split}", folder, evaluate))
    stages.append(Stage("fid", out / "fid", lambda: _fid(cfg, out)))
    if st.privacy:
        for arch in st.gans:
            stages.append(Stage(f"privacy {arch}", out / f"privacy_{arch}", lambda arch=arch: _privacy(cfg, out, arch)))
    if st.kind == "anonymization":
        stages += _curve_plan(cfg, out, data)
    return stages


def _curve_plan(cfg: ExperimentConfig, out: Path, data: Path) -> list[Stage]:
    """One stage per (GAN, curve minute): sample that snapshot, train and score a U-net."""
    from tf_vesselgan.experiments.curve import curve_point, curve_points

    stages = []
    for arch in cfg.study.gans:
        for t in curve_points(cfg, study_gan_config(cfg, arch)):
            folder = out / f"curve_{arch}_{t:g}min"
            stages.append(Stage(f"curve {arch} at {t:g} min", folder,
                                lambda arch=arch, t=t, folder=folder: curve_point(cfg, out, data, arch, t, folder)))
    return stages


def second_train_patients(cfg: ExperimentConfig, second: Path) -> int:
    """Training patients the second data set will have (its split is the configured one)."""
    from tf_vesselgan.data.nifti import discover_cases
    from tf_vesselgan.data.split import split_cases

    if cfg.study.transfer_phantom_cases:
        ids = [f"phantom_{i:03d}" for i in range(cfg.study.transfer_phantom_cases)]
    else:
        ids = [c.case_id for c in discover_cases(second)[0]]
    return len(split_cases(ids, cfg.data.split, cfg.seed)["train"])


def _transfer_plan(cfg: ExperimentConfig, out: Path, patches: Path, second: Path) -> list[Stage]:
    from tf_vesselgan.experiments.transfer import transfer_stages, usable_n
    from tf_vesselgan.training.unet_trainer import train_unet

    arch = cfg.study.gans[0]
    pretrained = out / f"unet_synthetic_{arch}"

    def pretrain():
        shutil.rmtree(pretrained, ignore_errors=True)
        train_unet("synthetic", patches, pretrained, cfg, samples=out / f"samples_{arch}", verbose=2)

    ns = usable_n(cfg, second_train_patients(cfg, second))
    if not ns:
        raise UserError("study.transfer_n: no n fits the second data set's training patients")
    cfg = dataclasses.replace(cfg, study=dataclasses.replace(cfg.study, transfer_n=ns))
    return [Stage(f"unet synthetic_{arch} (pre-training)", pretrained, pretrain)] + \
        transfer_stages(cfg, out, second, pretrained, Stage)


def _fid(cfg: ExperimentConfig, out: Path) -> None:
    import csv

    from tf_vesselgan.evaluation.fid import distance_table

    folder = out / "fid"
    folder.mkdir(parents=True, exist_ok=True)
    status = json.loads((out / "unet_real" / "run.json").read_text())
    if status.get("normalization") == "global":  # no intensity scale in samples: no U-net feature space
        (folder / "skipped.txt").write_text("unet_real uses global z-scoring; set unet.normalization: minmax\n")
        return
    fakes = [out / f"samples_{a}" for a in cfg.study.gans]
    rows = distance_table(out / "patches", fakes, f"unet:{out / 'unet_real'}", cfg.study.fid_samples, seed=cfg.seed)
    for r, arch in zip(rows, cfg.study.gans):
        r["gan"] = arch
    with open(folder / "fid.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _privacy(cfg: ExperimentConfig, out: Path, arch: str) -> None:
    from tf_vesselgan.privacy.audit import run_privacy

    features = None
    status = json.loads((out / "unet_real" / "run.json").read_text())
    if status.get("normalization") != "global":
        features = f"unet:{out / 'unet_real'}"
    run_privacy(out / f"gan_{arch}", out / "patches", out / f"privacy_{arch}", n=min(cfg.study.n_samples, 2000),
                seed=cfg.seed, features=features, overwrite=True, progress=False)


def run_experiment(config_path, data=None, out=None, log=print, transfer_data=None) -> Path:
    """Runs every stage not yet complete, then writes the report; returns report.md's path."""
    from tf_vesselgan.experiments.report import write_report

    cfg = load_config(config_path)
    second = None
    if cfg.study.kind == "transfer":
        if cfg.study.transfer_phantom_cases:
            second = (Path(out) if out else Path("out") / cfg.name) / "t_phantom"
        elif transfer_data is None or not Path(transfer_data).is_dir():
            raise UserError("a transfer study needs --transfer-data (an existing folder) or "
                            "study.transfer_phantom_cases")
        else:
            second = Path(transfer_data)
    out = Path(out) if out else Path("out") / cfg.name
    if cfg.study.phantom_cases:
        data = out / "phantom"
    elif data is None:
        raise UserError(f"{config_path}: study.phantom_cases is 0, so --data is required")
    elif not Path(data).is_dir():
        raise UserError(f"data folder {data} does not exist")
    data = Path(data)
    key = config_hash(cfg) + f":{data.resolve()}" + (f":{second.resolve()}" if second else "")
    stages = plan(cfg, data, out, second)  # checks the study before anything is written
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    for i, stage in enumerate(stages, 1):
        if stage.done(key):
            log(f"[{i}/{len(stages)}] {stage.name}: complete, skipped")
            continue
        log(f"[{i}/{len(stages)}] {stage.name} -> {stage.folder}")
        t0 = time.perf_counter()
        stage.action()
        stage.folder.mkdir(parents=True, exist_ok=True)
        stage.mark(key, time.perf_counter() - t0)
    report = write_report(out, cfg, data, second)
    log(f"run: {len(stages)} stages, {time.perf_counter() - t_all:.0f} s this time -> {report}")
    return report
