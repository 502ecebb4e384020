import pytest
import yaml

from tf_vesselgan.config import ExperimentConfig, config_hash, load_config, save_config
from tf_vesselgan.errors import ConfigError


def write(tmp_path, text):
    p = tmp_path / "exp.yaml"
    p.write_text(text)
    return p


def test_defaults_are_the_papers():
    cfg = load_config(None)
    assert cfg.data.patch_size == 96
    assert (cfg.data.n_vessel, cfg.data.n_random) == (500, 500)
    assert cfg.data.split.train == pytest.approx(41 / 66)


@pytest.mark.parametrize("text, key, what", [
    ("data:\n  patch_sise: 96\n", "data.patch_sise", "unknown key"),
    ("data:\n  patch_size: big\n", "data.patch_size", "expected int"),
    ("data:\n  patch_size: 4\n", "data.patch_size", "out of range"),
    ("data:\n  compression: ZIP\n", "data.compression", "not one of"),
    ("data:\n  split:\n    train: 0.5\n    val: 0.1\n    test: 0.1\n", "data.split", "sum to 1"),
    ("seed: -3\n", "seed", "out of range"),
    ("data:\n  label_map: {0: 0, 2: 5}\n", "data.label_map", "0 or 1"),
    ("data: [1, 2]\n", "data", "expected a mapping"),
    ("gan:\n  width: .nan\n", "gan.width", "not a finite number"),
    ("gan:\n  gp_weight: .inf\n", "gan.gp_weight", "not a finite number"),
    ("gan:\n  label_threshold: high\n", "gan.label_threshold", "'auto'"),
    ("gan:\n  label_threshold: 1.5\n", "gan.label_threshold", "out of range"),
    ("gan:\n  label_min_intensity: bright\n", "gan.label_min_intensity", "'auto'"),
    ("gan:\n  label_min_intensity: 1.5\n", "gan.label_min_intensity", "out of range"),
    ("gan:\n  label_threshold: auto\n  threshold_in_training: true\n", "gan.threshold_in_training", "auto"),
    ("gan:\n  diff_augment: translation,colour\n", "gan.diff_augment", "unknown policy 'colour'"),
    ("gan:\n  ema_decay: 1.0\n", "gan.ema_decay", "out of range"),
    ("gan:\n  max_seconds: 0\n", "gan.max_seconds", "out of range"),
    ("gan:\n  quality_features: unet:x\n", "gan.quality_features", "snapshot_every"),
    ("gan:\n  snapshot_every: 1\n  quality_features: x\n", "gan.quality_features", "unet:RUN"),
    ("gan:\n  quality_score: gan_train\n", "gan.quality_score", "snapshot_every"),
    ("gan:\n  snapshot_every: 1\n  quality_score: gan_test\n", "gan.quality_score", "quality_features"),
    ("gan:\n  quality_score: dice\n", "gan.quality_score", "not one of"),
    ("unet:\n  loss: focal\n", "unet.loss", "not one of"),
    ("gan:\n  label_coding: signed\n  threshold_in_training: true\n", "gan.threshold_in_training", "unit"),
    ("gan:\n  label_coding: binary\n", "gan.label_coding", "not one of"),
    ("study:\n  phantom_shape: [128, 128]\n", "study.phantom_shape", "three sizes"),
    ("study:\n  phantom_shape: [128, 128, 4]\n", "study.phantom_shape", "three sizes"),
])
def test_bad_values_name_file_and_key(tmp_path, text, key, what):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg and f"'{key}'" in msg and what in msg


def test_non_utf8_config_is_one_clear_error(tmp_path):
    p = tmp_path / "b.yaml"
    p.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not a UTF-8 text file"):
        load_config(p)


def test_auto_label_threshold_and_sampling_options_load(tmp_path):
    cfg = load_config(write(tmp_path, "gan:\n  label_threshold: auto\n  ema_decay: 0.999\n  diff_augment: "
                                      "translation,cutout\n  max_seconds: 3600\n"))
    assert cfg.gan.label_threshold == "auto" and cfg.gan.ema_decay == 0.999 and cfg.gan.max_seconds == 3600.0
    assert load_config(write(tmp_path, "gan:\n  label_threshold: 0.25\n")).gan.label_threshold == 0.25
    assert load_config(None).gan.sample_bn == "recalibrate"


def test_config_is_frozen_and_round_trips(tmp_path):
    cfg = load_config(write(tmp_path, "name: x\ndata:\n  patch_size: 32\n  label_map: {0: 0, 2: 1}\n"))
    with pytest.raises(Exception):
        cfg.name = "y"
    save_config(cfg, tmp_path / "resolved.yaml")
    again = load_config(tmp_path / "resolved.yaml")
    assert again == cfg and config_hash(again) == config_hash(cfg)
    assert yaml.safe_load((tmp_path / "resolved.yaml").read_text())["data"]["patch_size"] == 32


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "data: [\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_are_checked_too():
    with pytest.raises(ConfigError, match="data.n_vessel"):
        load_config(None, {"data": {"n_vessel": "many"}})
    assert load_config(None, {"seed": 7}).seed == 7
    assert isinstance(load_config(None), ExperimentConfig)


@pytest.mark.parametrize("text", ["gan: [1, 2]\n", "gan:\n", "unet: 3\n"])
def test_flags_do_not_bypass_validation_of_the_file(tmp_path, text):
    """CLI flags arrive as overrides; a broken section of the file is refused all the same."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(path, {"gan": {"arch": "dcgan", "epochs": 1}, "unet": {"width": 0.5}})


def test_a_later_key_at_its_default_leaves_the_hash_of_older_configs_unchanged():
    """Stage markers and run folders recorded before gan.dp, gan.label_blur, gan.label_min_intensity, gan.upsample,
    gan.label_head, gan.critic_layout, gan.critic_reals, gan.collapse_similarity_ceiling, gan.monitor_every,
    gan.label_teacher_*, gan.lr_decay_from,
    study.dp_epsilons, study.phantom_shape and the phantom's contrast existed stay valid."""
    import hashlib
    import json

    from tf_vesselgan.config import config_hash, from_dict, to_dict

    cfg = from_dict({"gan": {"width": 0.125}})
    before = to_dict(cfg)
    del before["gan"]["dp"]  # the config as it was hashed before these keys were added
    del before["gan"]["label_blur"]
    del before["gan"]["label_min_intensity"]
    for key in ("upsample", "label_head", "critic_layout", "critic_reals", "collapse_similarity_ceiling",
                "monitor_every", "label_teacher_steps", "label_teacher_width", "label_teacher_weight", "lr_decay_from"):
        del before["gan"][key]
    del before["study"]["dp_epsilons"]
    del before["study"]["phantom_shape"]
    del before["study"]["phantom_inflow_mm"]
    del before["study"]["phantom_fat"]
    old = hashlib.sha256(json.dumps(before, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert config_hash(cfg) == old
    assert config_hash(from_dict({"gan": {"width": 0.125, "arch": "wgan-gp", "dp": {}}})) != \
        config_hash(from_dict({"gan": {"width": 0.125, "arch": "wgan-gp"}}))
    assert config_hash(from_dict({"gan": {"width": 0.125, "label_blur": 0.6}})) != config_hash(cfg)
    for key, value in (("upsample", "resize"), ("label_head", "image"), ("critic_layout", "official"),
                       ("critic_reals", "reuse"), ("label_teacher_steps", 100)):
        assert config_hash(from_dict({"gan": {"width": 0.125, key: value}})) != config_hash(cfg)
    for key, value in (("phantom_inflow_mm", 300.0), ("phantom_fat", 0.5)):
        assert config_hash(from_dict({"gan": {"width": 0.125}, "study": {key: value}})) != config_hash(cfg)


def test_extends_takes_the_base_and_merges_this_file_over_it(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "root.yaml").write_text(
        "name: root\nseed: 3\ndata:\n  n_vessel: 40\n  n_random: 50\ngan:\n  epochs: 7\n  batch_size: 8\n"
        "study:\n  gans: [dcgan, wgan-gp]\n  gan_overrides: {wgan-gp: {max_seconds: 60}}\n  curve_minutes: [1]\n")
    (tmp_path / "base" / "mid.yaml").write_text("extends: root.yaml\nname: mid\ngan:\n  epochs: 9\n")
    leaf = tmp_path / "leaf.yaml"  # a path relative to the extending file, not to the working directory
    leaf.write_text("extends: base/mid.yaml\ndata:\n  n_random: 5\n"
                    "study:\n  gans: [dcgan]\n  gan_overrides: {}\n  curve_minutes: []\n")
    cfg = load_config(leaf)
    assert (cfg.name, cfg.seed, cfg.data.n_vessel, cfg.data.n_random) == ("mid", 3, 40, 5)
    assert (cfg.gan.epochs, cfg.gan.batch_size) == (9, 8)  # a section merges key by key through the chain
    assert cfg.study.gans == ["dcgan"] and cfg.study.curve_minutes == []  # a list replaces the base's
    assert cfg.study.gan_overrides == {}  # an empty mapping clears the base's
    spelled_out = load_config(write(tmp_path, "name: mid\nseed: 3\ndata:\n  n_vessel: 40\n  n_random: 5\n"
                                              "gan:\n  epochs: 9\n  batch_size: 8\nstudy:\n  gans: [dcgan]\n"))
    assert cfg == spelled_out and config_hash(cfg) == config_hash(spelled_out)


@pytest.mark.parametrize("files, what", [
    ({"a.yaml": "extends: missing.yaml\n"}, "no such file"),
    ({"a.yaml": "extends: a.yaml\n"}, "circular"),
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"}, "circular"),
    ({"a.yaml": "extends: 3\n"}, "must be the path"),
    ({"a.yaml": "extends: ''\n"}, "must be the path"),
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "data: [\n"}, "b.yaml: not valid YAML"),
    ({"a.yaml": "extends: b.yaml\ngan:\n  epochs: 2\n", "b.yaml": "gan:\n  epoch: 1\n"}, "gan.epoch"),
])
def test_a_bad_extends_is_one_clear_error(tmp_path, files, what):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "a.yaml")
    assert what in str(err.value) and len(str(err.value).splitlines()) == 1


# config_hash of each file as it was spelled out in full before it used `extends`
SPELLED_OUT_HASHES = {"icbm_diffaugment": "b12607f0fb850ad8", "icbm_official_critic": "c6a981a12f9bf78a",
                      "icbm_official_critic_30": "aeca06f791930b95", "icbm_official_critic_4x": "13acefa584584f74",
                      "icbm_official_critic_60": "92fcdf02d6e8920f",
                      "icbm_official_critic_diffaugment": "04d98fea8affcad1", "icbm_resize": "571f0c9431f7d666"}


@pytest.mark.parametrize("name", sorted(SPELLED_OUT_HASHES))
def test_a_cpu_config_that_extends_resolves_to_what_it_spelled_out(name):
    """The README's runs of these configs were made from spelled-out copies; a resolved
    config that drifted would key its stages differently and redo them in those run folders."""
    from pathlib import Path

    cfg = load_config(Path(__file__).resolve().parents[1] / "experiments" / "cpu" / f"{name}.yaml")
    assert config_hash(cfg) == SPELLED_OUT_HASHES[name]


def test_the_signed_4x_arm_is_the_4x_arm_with_signed_labels():
    from pathlib import Path

    cpu = Path(__file__).resolve().parents[1] / "experiments" / "cpu"
    four, signed = (load_config(cpu / f"icbm_official_critic_4x{s}.yaml") for s in ("", "_signed"))
    assert (signed.gan.critic_layout, signed.gan.label_coding, four.gan.label_coding) == ("official", "signed", "unit")
    assert signed.data == four.data and signed.unet == four.unet and signed.seed == four.seed
    assert signed.study.curve_minutes == [] and four.study.curve_minutes == [10]
