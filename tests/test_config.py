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
    """Stage markers and run folders recorded before gan.dp, gan.label_blur, gan.upsample,
    gan.critic_layout, gan.critic_reals, gan.collapse_similarity_ceiling, study.dp_epsilons,
    study.phantom_shape and the phantom's contrast existed stay valid."""
    import hashlib
    import json

    from tf_vesselgan.config import config_hash, from_dict, to_dict

    cfg = from_dict({"gan": {"width": 0.125}})
    before = to_dict(cfg)
    del before["gan"]["dp"]  # the config as it was hashed before these keys were added
    del before["gan"]["label_blur"]
    for key in ("upsample", "critic_layout", "critic_reals", "collapse_similarity_ceiling"):
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
    for key, value in (("upsample", "resize"), ("critic_layout", "official"), ("critic_reals", "reuse")):
        assert config_hash(from_dict({"gan": {"width": 0.125, key: value}})) != config_hash(cfg)
    for key, value in (("phantom_inflow_mm", 300.0), ("phantom_fat", 0.5)):
        assert config_hash(from_dict({"gan": {"width": 0.125}, "study": {key: value}})) != config_hash(cfg)
