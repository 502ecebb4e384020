"""Stages of an experiment, run in order; a stage whose output folder carries a
completion marker for the same inputs is skipped, so an interrupted run resumes.

A stage's inputs are what it reads: its config sections, the seed, the data folder and
the input keys of the stages it consumes. Changing the GAN's budget thus redoes the GANs
and everything made from their samples, but not the patches, the real-patch U-net or its
evaluation. Markers written before stages had input keys carry only the whole config's
hash; they still count while that hash matches, and such a rerun adds the input key.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from functools import partial
from pathlib import Path

from tf_vesselgan.config import ExperimentConfig, config_hash, load_config, study_arms
from tf_vesselgan.errors import UserError
from tf_vesselgan.experiments.layout import Layout
from tf_vesselgan.training.run_folder import read_status

MARKER = ".stage.json"


@dataclasses.dataclass
class Stage:
    name: str
    folder: Path
    action: object  # callable() -> None, writes into `folder`
    inputs: str | None = None  # `inputs_key` of what the stage reads; None: the whole config

    def done(self, key: str) -> bool:
        """Complete for these inputs (or, for an older marker or a stage without input
        key, for this whole-config `key`)."""
        m = self.folder / MARKER
        if not m.exists():
            return False
        marker = json.loads(m.read_text())
        if self.inputs is not None and marker.get("inputs") is not None:
            return marker["inputs"] == self.inputs
        return marker.get("config") == key

    def upgrade(self, key: str) -> None:
        """Adds the input key to a complete stage's older marker (whole-config hash only),
        so that later config changes are judged by what this stage reads."""
        m = self.folder / MARKER
        marker = json.loads(m.read_text())
        if self.inputs is not None and marker.get("inputs") is None:
            self.mark(key, marker.get("seconds", 0.0))

    def mark(self, key: str, seconds: float) -> None:
        (self.folder / MARKER).write_text(json.dumps({"stage": self.name, "config": key, "inputs": self.inputs,
                                                      "seconds": seconds}))


def inputs_key(*parts) -> str:
    """Hash of a stage's inputs: config sections, values, paths, upstream input keys."""
    return config_hash([str(p) if isinstance(p, Path) else p for p in parts])


def plan(cfg: ExperimentConfig, data: Path, out: Path, second: Path | None = None) -> list[Stage]:
    """The stages of `cfg.study.kind`, in the order data flows."""
    from tf_vesselgan.evaluation.evaluate import tuning_key
    from tf_vesselgan.training.gan_trainer import check_gan

    st = cfg.study
    at = Layout(out)
    arms = study_arms(cfg)  # rejects bad overrides and DP arms before any work
    for arm_cfg in arms.values():
        check_gan(arm_cfg.gan, cfg.data.patch_size)
    if st.curve_minutes and not cfg.gan.snapshot_every:
        raise UserError("study.curve_minutes needs gan.snapshot_every > 0 (the curve samples snapshots)")
    stages = _data_stages(cfg, data, at)
    patches = stages[-1].inputs
    made = {arm: _gan_stages(arm_cfg, at, arm, patches) for arm, arm_cfg in arms.items()}
    stages += [s for pair in made.values() for s in pair]
    if st.kind == "transfer":
        return stages + _transfer_plan(cfg, out, at.patches, second, patches, made[st.gans[0]][1].inputs)
    gans = {arm: pair[0].inputs for arm, pair in made.items()}
    samples = {arm: pair[1].inputs for arm, pair in made.items()}
    unets = {Layout.unet_name("real"): ("real", None, None)}
    train = "synthetic" if st.kind == "anonymization" else "both"
    unets.update({Layout.unet_name(train, arm): (train, at.samples(arm), samples[arm]) for arm in arms})
    keys = {name: inputs_key("unet", patches, cfg.unet, cfg.seed, train_on, drawn)
            for name, (train_on, _, drawn) in unets.items()}
    real = keys[Layout.unet_name("real")]
    stages += [Stage(f"unet {name}", at.unet(name), partial(_unet, cfg, at, name, train_on, folder), keys[name])
               for name, (train_on, folder, _) in unets.items()]
    tuning = tuning_key(cfg.unet)
    stages += [Stage(f"evaluate {name} on {split}", at.evaluation(name, split),
                     partial(_evaluate, at, data, name, split),
                     inputs_key("evaluate", keys[name], split, data.resolve(), *tuning))
               for name in unets for split in SPLITS]
    stages.append(Stage("fid", at.fid, partial(_fid, cfg, out),
                        inputs_key("fid", patches, real, samples, st.fid_samples, cfg.seed)))
    if st.privacy:
        stages += [Stage(f"privacy {arm}", at.privacy(arm), partial(_privacy, cfg, out, arm),
                         inputs_key("privacy", gans[arm], patches, real, st.n_samples, cfg.seed)) for arm in arms]
    if st.kind == "anonymization":
        # the real U-net's key covers the patches, the U-net config and the seed
        stages += _curve_plan(cfg, out, data, gans,
                              inputs_key("curve", real, st.n_samples, st.fid_samples, data.resolve(), *tuning))
    return stages


SPLITS = ("val", "test")  # the real patients every study U-net is evaluated on


def _data_stages(cfg: ExperimentConfig, data: Path, at: Layout) -> list[Stage]:
    """The built-in phantom (when the study uses one), then the patches."""
    from tf_vesselgan.data.build import build_patches

    stages = []
    source = data.resolve()
    if cfg.study.phantom_cases:
        from tf_vesselgan.data.phantom import DEFAULT_FAT, DEFAULT_INFLOW_MM, DEFAULT_SHAPE

        st = cfg.study  # shape and contrast keyed only when not the default, as before the options
        shape, contrast = tuple(st.phantom_shape), (st.phantom_inflow_mm, st.phantom_fat)
        source = inputs_key("phantom", st.phantom_cases, cfg.seed, *([shape] if shape != DEFAULT_SHAPE else []),
                            *([contrast] if contrast != (DEFAULT_INFLOW_MM, DEFAULT_FAT) else []))
        stages.append(Stage("phantom", at.phantom, partial(_phantom, cfg, at.phantom), source))
    build = partial(build_patches, data, at.patches, cfg, overwrite=True, progress=False)
    stages.append(Stage("patches", at.patches, build, inputs_key("patches", cfg.data, cfg.seed, source)))
    return stages


def _phantom(cfg: ExperimentConfig, folder: Path) -> None:
    from tf_vesselgan.data.phantom import write_phantom_dataset

    shutil.rmtree(folder, ignore_errors=True)
    st = cfg.study
    write_phantom_dataset(folder, cases=st.phantom_cases, shape=tuple(st.phantom_shape), seed=cfg.seed,
                          inflow_mm=st.phantom_inflow_mm, fat=st.phantom_fat)


def _gan_stages(arm_cfg: ExperimentConfig, at: Layout, arm: str, patches: str) -> list[Stage]:
    """Training and sampling of one study arm (a GAN, with or without DP), whose own
    config is `arm_cfg`, from the patches of input key `patches`."""
    g = arm_cfg.gan
    scorer_lr = arm_cfg.unet.learning_rate if g.quality_score == "gan_train" else None  # its U-net's
    trained = inputs_key("gan", patches, g, arm_cfg.seed, scorer_lr)
    return [Stage(f"gan {arm}", at.gan(arm), partial(_gan, arm_cfg, at, arm), trained),
            Stage(f"samples {arm}", at.samples(arm), partial(_samples, arm_cfg, at, arm),
                  inputs_key("samples", trained, arm_cfg.study.n_samples, arm_cfg.seed))]


def _gan(arm_cfg: ExperimentConfig, at: Layout, arm: str) -> None:
    from tf_vesselgan.training.gan_trainer import train_gan

    run = at.gan(arm)
    resume = (run / "config.yaml").exists()
    if train_gan(at.patches, run, arm_cfg, resume=resume, verbose=2)["interrupted"]:
        raise KeyboardInterrupt


def _samples(arm_cfg: ExperimentConfig, at: Layout, arm: str) -> None:
    from tf_vesselgan.training.dp import dp_statement
    from tf_vesselgan.training.run_models import restore_generator
    from tf_vesselgan.training.sampling import write_samples

    run = at.gan(arm)
    gen, gcfg = restore_generator(run)
    write_samples(gen, arm_cfg.study.n_samples, at.samples(arm), seed=arm_cfg.seed,
                  threshold=gcfg.gan.label_threshold, overwrite=True, progress=False,
                  meta={"arch": gcfg.gan.arch, "width": gcfg.gan.width,
                        "differential_privacy": dp_statement(read_status(run))})


def _unet(cfg: ExperimentConfig, at: Layout, name: str, train: str, samples: Path | None) -> None:
    from tf_vesselgan.training.unet_trainer import train_unet

    shutil.rmtree(at.unet(name), ignore_errors=True)
    train_unet(train, at.patches, at.unet(name), cfg, samples=samples, verbose=2)


def _evaluate(at: Layout, data: Path, name: str, split: str) -> None:
    from tf_vesselgan.data.build import read_manifest
    from tf_vesselgan.evaluation.evaluate import run_segmentation

    folder = at.evaluation(name, split)
    if read_manifest(at.patches)["counts"].get(split, 0) == 0:
        folder.mkdir(parents=True, exist_ok=True)  # no patient in this split: an empty, complete stage
        return
    run_segmentation(at.unet(name), data, split, folder, evaluate=True, overwrite=True, progress=False)


def _curve_plan(cfg: ExperimentConfig, out: Path, data: Path, gans: dict[str, str], shared: str) -> list[Stage]:
    """One stage per (GAN, curve minute): sample that snapshot, train and score a U-net.
    A point reads its GAN's run (input key `gans[arch]`) and what all points share
    (`shared`: the real U-net's key, sample counts, data folder)."""
    from tf_vesselgan.experiments.curve import curve_point, curve_points

    at = Layout(out)
    return [Stage(f"curve {arch} at {t:g} min", at.curve(arch, t),
                  partial(curve_point, cfg, out, data, arch, t, at.curve(arch, t)),
                  inputs_key("curve point", gans[arch], t, shared))
            for arch, arch_cfg in study_arms(cfg).items() for t in curve_points(cfg, arch_cfg)]


def _transfer_plan(cfg: ExperimentConfig, out: Path, patches: Path, second: Path, patches_key: str,
                   samples_key: str) -> list[Stage]:
    """Pre-training on the first GAN's samples (input key `samples_key`), then the
    transfer stages on the second data set."""
    from tf_vesselgan.experiments.transfer import second_train_patients, transfer_stages, usable_n
    from tf_vesselgan.training.unet_trainer import train_unet

    at = Layout(out)
    arch = cfg.study.gans[0]
    name = Layout.unet_name("synthetic", arch)
    pretrained = at.unet(name)

    def pretrain():
        shutil.rmtree(pretrained, ignore_errors=True)
        train_unet("synthetic", patches, pretrained, cfg, samples=at.samples(arch), verbose=2)

    ns = usable_n(cfg, second_train_patients(cfg, second))
    if not ns:
        raise UserError("study.transfer_n: no n fits the second data set's training patients")
    cfg = dataclasses.replace(cfg, study=dataclasses.replace(cfg.study, transfer_n=ns))
    pre_key = inputs_key("unet", patches_key, cfg.unet, cfg.seed, "synthetic", samples_key)  # as a study U-net's
    return [Stage(f"unet {name} (pre-training)", pretrained, pretrain, pre_key)] + \
        transfer_stages(cfg, out, second, pretrained, pre_key)


def _fid(cfg: ExperimentConfig, out: Path) -> None:
    import csv

    from tf_vesselgan.evaluation.fid import distance_table

    at = Layout(out)
    folder, real = at.fid, at.unet(Layout.unet_name("real"))
    folder.mkdir(parents=True, exist_ok=True)
    if read_status(real).get("normalization") == "global":  # no intensity scale in samples: no U-net feature space
        (folder / "skipped.txt").write_text("unet_real uses global z-scoring; set unet.normalization: minmax\n")
        return
    arms = list(study_arms(cfg))
    rows = distance_table(at.patches, [at.samples(a) for a in arms], f"unet:{real}", cfg.study.fid_samples,
                          seed=cfg.seed)
    for r, arm in zip(rows, arms):
        r["gan"] = arm
    with open(folder / "fid.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _privacy(cfg: ExperimentConfig, out: Path, arch: str) -> None:
    from tf_vesselgan.privacy.audit import run_privacy

    at = Layout(out)
    real = at.unet(Layout.unet_name("real"))
    features = f"unet:{real}" if read_status(real).get("normalization") != "global" else None
    run_privacy(at.gan(arch), at.patches, at.privacy(arch), n=min(cfg.study.n_samples, 2000),
                seed=cfg.seed, features=features, overwrite=True, progress=False)


def run_experiment(config_path, data=None, out=None, log=print, transfer_data=None) -> Path:
    """Runs every stage not yet complete, then writes the report; returns report.md's path."""
    from tf_vesselgan.experiments.report import write_report

    cfg = load_config(config_path)
    second = None
    if cfg.study.kind == "transfer":
        if cfg.study.transfer_phantom_cases:
            second = Layout(Path(out) if out else Path("out") / cfg.name).second_phantom
        elif transfer_data is None or not Path(transfer_data).is_dir():
            raise UserError("a transfer study needs --transfer-data (an existing folder) or "
                            "study.transfer_phantom_cases")
        else:
            second = Path(transfer_data)
    out = Path(out) if out else Path("out") / cfg.name
    if cfg.study.phantom_cases:
        data = Layout(out).phantom
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
            stage.upgrade(key)
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
