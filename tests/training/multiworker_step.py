"""One WGAN-GP step under MultiWorkerMirroredStrategy, run as a worker process.

Usage: python multiworker_step.py IN.npz OUT_DIR  (TF_CONFIG names the cluster and
this worker). IN holds the initial weights and the global batch; each worker writes
its weights after the step to OUT_DIR/worker<index>.npz.
"""
import json
import os
import sys

import tf_vesselgan  # noqa: F401  (TF environment defaults)
import numpy as np
import tensorflow as tf

# The strategy must exist before any other TensorFlow op runs in this process.
from tf_vesselgan.training.strategy import make_strategy

strategy = make_strategy("auto")  # TF_CONFIG is set: MultiWorkerMirroredStrategy

from tf_vesselgan.config import GANConfig  # noqa: E402
from tf_vesselgan.training.gan_trainer import build_gan  # noqa: E402


def main(src: str, out: str) -> None:
    task = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    z = np.load(src)
    n_g = int(z["n_generator"])
    weights = [z[f"w{i}"] for i in range(int(z["n_weights"]))]
    with strategy.scope():
        gan = build_gan(GANConfig(arch="wgan-gp", width=float(z["width"]), n_critic=2), 96, seed=3,
                        synchronized_bn=True)
    gan.generator.set_weights(weights[:n_g])
    gan.critic.set_weights(weights[n_g:])
    data = z["data"]
    options = tf.data.Options()
    # DATA sharding after rebatching: worker k gets rows [k·n/2, (k+1)·n/2) of the
    # global batch, as replica k does under MirroredStrategy.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    ds = tf.data.Dataset.from_tensor_slices(data).batch(len(data)).with_options(options)
    gan.fit(ds, epochs=1, verbose=0)
    after = gan.generator.get_weights() + gan.critic.get_weights()
    np.savez(os.path.join(out, f"worker{task}.npz"), replicas=strategy.num_replicas_in_sync,
             **{f"w{i}": w for i, w in enumerate(after)})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
