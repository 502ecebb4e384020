"""One train step per GAN and a sampling pass, for the oneDNN numerics test.

Usage: TF_ENABLE_ONEDNN_OPTS=0|1 python onednn_worker.py OUT.npz
"""
import sys

import tf_vesselgan  # noqa: F401  (keeps an explicit TF_ENABLE_ONEDNN_OPTS)
import keras
import numpy as np

from tf_vesselgan.config import GANConfig
from tf_vesselgan.training.gan_trainer import build_gan
from tf_vesselgan.training.sampling import generate


def main(out: str) -> None:
    import tensorflow as tf

    from tests.training.test_gan_steps import toy_pairs

    result = {}
    for arch in ("dcgan", "wgan-gp", "wgan-gp-sn"):
        keras.utils.set_random_seed(0)
        gan = build_gan(GANConfig(arch=arch, width=0.03, n_critic=2), 96, seed=0)
        result[f"{arch}/init"] = np.concatenate([w.ravel() for w in gan.generator.get_weights()])
        gan.fit(tf.data.Dataset.from_tensor_slices(toy_pairs(8, seed=1)).batch(8), epochs=1, verbose=0)
        result[f"{arch}/generator"] = np.concatenate([w.ravel() for w in gan.generator.get_weights()])
        result[f"{arch}/critic"] = np.concatenate([w.ravel() for w in gan.critic.get_weights()])
        image, label = next(generate(gan.generator, 32, seed=5))
        result[f"{arch}/image"], result[f"{arch}/label"] = image, label
    np.savez(out, **result)


if __name__ == "__main__":
    main(sys.argv[1])
