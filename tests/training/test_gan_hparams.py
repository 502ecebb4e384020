"""TensorBoard's hparams of a GAN run carry every gan key a study varies."""
import dataclasses

from tf_vesselgan.config import DPConfig, ExperimentConfig, GANConfig
from tf_vesselgan.training.gan_trainer import gan_hparams


def test_every_scalar_gan_key_is_an_hparam_tensorboard_accepts():
    from tensorboard.plugins.hparams import api as hp

    g = GANConfig(arch="dcgan", critic_layout="official", upsample="resize", diff_augment="translation,cutout",
                  dp=DPConfig(noise_multiplier=1.5, l2_clip=0.5))
    h = gan_hparams(ExperimentConfig(seed=7, gan=g), replicas=2)
    assert (h["critic_layout"], h["upsample"], h["diff_augment"]) == ("official", "resize", "translation,cutout")
    assert (h["seed"], h["replicas"], h["dp.noise_multiplier"], h["dp.l2_clip"]) == (7, 2, 1.5, 0.5)
    assert "dp.target_epsilon" not in h  # unset
    scalar = [f.name for f in dataclasses.fields(g) if getattr(g, f.name) is not None and f.name != "dp"]
    assert set(scalar) <= set(h)
    assert all(isinstance(v, (bool, int, float, str)) for v in h.values())
    hp.hparams_pb(h)  # raises on a value TensorBoard cannot store
