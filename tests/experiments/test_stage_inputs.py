"""Stage input keys: a change redoes the stages that read it and only those; markers
written before stages had input keys still count while the whole config is unchanged."""
import json
from pathlib import Path

import yaml

from tf_vesselgan.config import config_hash, from_dict, load_config
from tf_vesselgan.experiments.runner import MARKER, Stage, plan

STUDY = {"name": "keys", "seed": 3, "data": {"n_vessel": 20, "n_random": 20},
         "gan": {"width": 0.03, "batch_size": 4, "epochs": 1, "steps_per_epoch": 2},
         "unet": {"width": 0.125, "batch_size": 8, "epochs": 1, "steps_per_epoch": 2},
         "study": {"kind": "anonymization", "gans": ["wgan-gp-sn", "dcgan"], "n_samples": 64}}


def _inputs(change: dict, tmp_path) -> dict[str, str]:
    mapping = json.loads(json.dumps(STUDY))
    for section, values in change.items():
        mapping[section].update(values)
    stages = plan(from_dict(mapping), tmp_path / "data", tmp_path / "out")
    return {s.name: s.inputs for s in stages}


def _redone(change: dict, tmp_path) -> set[str]:
    before, after = _inputs({}, tmp_path), _inputs(change, tmp_path)
    assert set(before) == set(after) and None not in before.values()
    return {name for name in before if before[name] != after[name]}


def test_a_longer_gan_budget_keeps_the_patches_and_the_real_unet(tmp_path):
    redone = _redone({"gan": {"max_seconds": 900}}, tmp_path)
    assert redone == {"gan wgan-gp-sn", "gan dcgan", "samples wgan-gp-sn", "samples dcgan",
                      "unet synthetic_wgan-gp-sn", "unet synthetic_dcgan", "fid", "privacy wgan-gp-sn",
                      "privacy dcgan"} | {f"evaluate synthetic_{a} on {s}" for a in ("wgan-gp-sn", "dcgan")
                                          for s in ("val", "test")}


def test_a_unet_change_keeps_the_gans_and_their_samples(tmp_path):
    redone = _redone({"unet": {"epochs": 2}}, tmp_path)
    assert not any(name.startswith(("patches", "gan ", "samples ")) for name in redone)
    assert "unet real" in redone and "evaluate real on test" in redone and "fid" in redone
    assert "privacy dcgan" in redone  # its features come from the real U-net


def test_a_data_change_or_a_new_seed_redoes_everything(tmp_path):
    everything = set(_inputs({}, tmp_path))
    assert _redone({"data": {"n_vessel": 21}}, tmp_path) == everything
    assert _redone({"study": {}}, tmp_path) == set()
    mapping = dict(STUDY, seed=4)
    seeded = {s.name: s.inputs for s in plan(from_dict(mapping), tmp_path / "data", tmp_path / "out")}
    assert all(seeded[name] != key for name, key in _inputs({}, tmp_path).items())


def test_only_the_gan_arm_whose_override_changed_is_redone(tmp_path):
    redone = _redone({"study": {"gan_overrides": {"dcgan": {"batch_size": 8}}}}, tmp_path)
    assert "gan dcgan" in redone and "gan wgan-gp-sn" not in redone and "unet synthetic_wgan-gp-sn" not in redone


def test_a_curve_point_is_redone_only_when_its_gan_or_what_it_trains_changes(tmp_path):
    curve = {"gan": {"snapshot_every": 1}, "study": {"curve_minutes": [1, 2]}}

    def keys(gan=None, study=None, unet=None):
        change = {"gan": dict(curve["gan"], **(gan or {})), "study": dict(curve["study"], **(study or {}))}
        return {n: k for n, k in _inputs(dict(change, unet=unet or {}), tmp_path).items() if n.startswith("curve ")}

    base = keys()
    assert set(base) == {f"curve {a} at {t} min" for a in ("wgan-gp-sn", "dcgan") for t in (1, 2)}
    assert all(base.values()) and len(set(base.values())) == 4
    more = keys(study={"curve_minutes": [1, 2, 3], "fid_samples": 500})
    assert {n: more[n] for n in base} != base  # the points' FID reads fid_samples
    more = keys(study={"curve_minutes": [1, 2, 3]})
    assert {n: more[n] for n in base} == base and "curve dcgan at 3 min" in more  # a new point, the rest kept
    dcgan = keys(study={"gan_overrides": {"dcgan": {"batch_size": 8}}})
    assert {n for n in base if base[n] != dcgan[n]} == {"curve dcgan at 1 min", "curve dcgan at 2 min"}
    assert all(base[n] != k for n, k in keys(unet={"epochs": 2}).items())


def test_markers_with_and_without_input_keys(tmp_path):
    stage = Stage("unet real", tmp_path, None, inputs="abc")
    assert not stage.done("whole")
    stage.mark("whole", 1.0)
    assert stage.done("whole") and stage.done("another whole config")  # its inputs did not change
    assert not Stage("unet real", tmp_path, None, inputs="abd").done("whole")
    (tmp_path / MARKER).write_text(json.dumps({"stage": "unet real", "config": "whole", "seconds": 1.0}))
    assert stage.done("whole") and not stage.done("another whole config")  # an older marker
    stage.upgrade("whole")  # a rerun with the same config adds the input key ...
    assert stage.done("another whole config") and json.loads((tmp_path / MARKER).read_text())["seconds"] == 1.0
    assert Stage("fid", tmp_path, None).done("whole")  # a stage without input key


def test_every_shipped_study_config_plans_with_an_input_key_for_every_stage(tmp_path):
    from tf_vesselgan.data.phantom import write_phantom_dataset

    second = tmp_path / "second"  # the transfer studies' second data set
    write_phantom_dataset(second, cases=20, shape=(24, 24, 16), progress=False)
    root = Path(__file__).resolve().parents[2] / "experiments"
    studies = [p for p in root.rglob("*.yaml") if {"study", "extends"} & set(yaml.safe_load(p.read_text()))]
    assert {"demo.yaml", "demo_phantom256.yaml", "icbm_official_critic_60.yaml",
            "icbm_official_critic_4x_signed.yaml"} <= {p.name for p in studies}
    for path in studies:
        cfg = load_config(path)
        assert all(s.inputs for s in plan(cfg, root, tmp_path / "out", second)), path
        assert config_hash(cfg)  # the whole-config key still exists for older markers


def _transfer_inputs(tmp_path, gan=None, unet=None, study=None) -> dict[str, str]:
    mapping = json.loads(json.dumps(STUDY))
    mapping["study"] = {"kind": "transfer", "gans": ["dcgan"], "phantom_cases": 4, "transfer_phantom_cases": 6,
                        "transfer_n": [1, 2], **(study or {})}
    mapping["gan"].update(gan or {})
    mapping["unet"].update(unet or {})
    out = tmp_path / "out"
    return {s.name: s.inputs for s in plan(from_dict(mapping), out / "phantom", out, out / "second_phantom")}


def test_transfer_stages_key_on_what_they_read(tmp_path):
    base = _transfer_inputs(tmp_path)
    assert None not in base.values() and len(set(base.values())) == len(base)
    assert {"transfer U-net pretrained_n1", "transfer evaluate scratch_n2"} <= set(base)
    more = _transfer_inputs(tmp_path, study={"transfer_n": [1, 2, 3]})
    assert {n: more[n] for n in base} == base and "transfer U-net pretrained_n3" in more  # a new n adds stages
    budget = _transfer_inputs(tmp_path, gan={"max_seconds": 900})
    assert {n for n in base if base[n] != budget[n]} == {
        "gan dcgan", "samples dcgan", "unet synthetic_dcgan (pre-training)"} | {
        f"transfer {what} pretrained_n{n}" for what in ("U-net", "evaluate") for n in (1, 2)}
    unet = _transfer_inputs(tmp_path, unet={"epochs": 2})
    assert {n for n in base if base[n] != unet[n]} == {
        n for n in base if n.startswith(("unet ", "transfer U-net", "transfer evaluate"))}


def test_a_gan_that_cannot_train_on_the_study_is_refused_by_the_plan(tmp_path):
    import pytest

    from tf_vesselgan.errors import UserError

    mapping = json.loads(json.dumps(STUDY))
    mapping["data"]["patch_size"] = 64
    with pytest.raises(UserError, match="patch_size must be 32, 96 or 160"):
        plan(from_dict(mapping), tmp_path / "data", tmp_path / "out")
    mapping = json.loads(json.dumps(STUDY))
    mapping["gan"].update(critic_reals="reuse")
    mapping["study"].update(gans=["wgan-gp"], dp_epsilons=[float("inf"), 10])
    with pytest.raises(UserError, match="critic_reals: reuse cannot be used with gan.dp"):
        plan(from_dict(mapping), tmp_path / "data", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_new_threshold_grid_redoes_only_the_tuned_evaluations(tmp_path, monkeypatch):
    import numpy as np

    from tf_vesselgan.evaluation import evaluate

    tuned = {"unet": {"tune_threshold": True}, "study": {"curve_minutes": [1]}, "gan": {"snapshot_every": 1,
                                                                                        "max_seconds": 600}}
    untuned = {"study": {"curve_minutes": [1]}, "gan": {"snapshot_every": 1, "max_seconds": 600}}
    before = {k: _inputs(c, tmp_path) for k, c in (("tuned", tuned), ("untuned", untuned))}
    monkeypatch.setattr(evaluate, "THRESHOLD_GRID", np.append(evaluate.THRESHOLD_GRID, 0.9995))
    after = {k: _inputs(c, tmp_path) for k, c in (("tuned", tuned), ("untuned", untuned))}
    redone = {name for name in before["tuned"] if before["tuned"][name] != after["tuned"][name]}
    assert redone == {f"evaluate {u} on {s}" for u in ("real", "synthetic_wgan-gp-sn", "synthetic_dcgan")
                      for s in ("val", "test")} | {"curve wgan-gp-sn at 1 min", "curve dcgan at 1 min"}
    assert before["untuned"] == after["untuned"]


def test_a_phantom_of_another_shape_redoes_everything_and_the_default_keeps_older_keys(tmp_path):
    def phantom_inputs(study):
        mapping = json.loads(json.dumps(STUDY))
        mapping["study"].update({"phantom_cases": 4, **study})
        return {s.name: s.inputs for s in plan(from_dict(mapping), tmp_path / "data", tmp_path / "out")}

    base = phantom_inputs({})
    assert phantom_inputs({"phantom_shape": [128, 128, 64]}) == base  # the default, as before the option
    bigger = phantom_inputs({"phantom_shape": [256, 256, 64]})
    assert "phantom" in base and all(bigger[name] != key for name, key in base.items())
    assert phantom_inputs({"phantom_inflow_mm": 60.0, "phantom_fat": 0.78}) == base
    for contrast in ({"phantom_inflow_mm": 300.0}, {"phantom_fat": 0.5}):
        brighter = phantom_inputs(contrast)
        assert all(brighter[name] != key for name, key in base.items())
