"""The three GANs as `keras.Model` subclasses with a custom `train_step`.

DCGAN (label smoothing, feature matching, minibatch discrimination) and WGAN-GP
(gradient penalty; with a spectral-normalised critic it is WGAN-GP-SN). Randomness is
stateless, seeded by (seed, generator step, use), and drawn for the global batch then
sliced per replica, so a distributed step equals a single-device step on the same data.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from tf_vesselgan.data.normalization import normalize
from tf_vesselgan.losses.adversarial import (dcgan_discriminator_loss, dcgan_generator_loss,
                                              feature_matching_loss, wasserstein_critic_loss,
                                              wasserstein_generator_loss)
from tf_vesselgan.losses.gradient_penalty import gradient_penalty
from tf_vesselgan.training.augment import diff_augment
from tf_vesselgan.training.strategy import in_multi_worker_mode

SALTS_PER_STEP = 1024  # random streams per generator step: (seed, step · 1024 + salt)
AUGMENT_SALT = 256  # DiffAugment's draws use salts from here on


def threshold_labels_ste(pair, threshold: float):
    """Hard label threshold with a straight-through gradient (off by default; see README).

    The label channel (in tanh range) becomes {0, 1} in the forward pass; the backward
    pass is the identity, so the generator's label channel still gets a gradient.
    """
    image, label = pair[..., :1], pair[..., 1:]
    hard = tf.cast(label > threshold, label.dtype)
    return tf.concat([image, label + tf.stop_gradient(hard - label)], axis=-1)


class GAN(keras.Model):
    """Common parts: sub-models, optimizers, trackers, replica-consistent randomness."""

    tracker_names: tuple[str, ...] = ()

    def __init__(self, generator: keras.Model, critic: keras.Model, latent_dim: int = 100, seed: int = 0,
                 label_threshold: float = 0.8, threshold_in_training: bool = False, diff_augment: str = "",
                 label_coding: str = "unit", label_teacher_weight: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.critic = critic
        self.latent_dim = latent_dim
        self.seed = seed
        self.label_threshold = label_threshold
        self.threshold_in_training = threshold_in_training
        self.diff_augment = diff_augment
        self.label_coding = label_coding
        self.label_teacher_weight = label_teacher_weight
        self.label_teacher = None  # set_label_teacher
        names = self.tracker_names + (("label_teacher",) if label_teacher_weight else ())
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self.built = True  # the sub-models are built

    @property
    def metrics(self):
        return list(self.trackers.values())

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.d_optimizer.build(self.critic.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    def call(self, noise, training=False):
        return self.generator(noise, training=training)

    def set_label_teacher(self, teacher: keras.Model) -> None:
        """The frozen U-net whose vessel probability on a drawn image the label channel
        learns (gan.label_teacher_steps); needed before training when label_teacher_weight > 0."""
        teacher.trainable = False
        self.label_teacher = teacher

    def _with_teacher(self, fake) -> dict:
        """{"label_teacher": its loss on the drawn pairs} when the teacher is on, else {}."""
        if not self.label_teacher_weight:
            return {}
        if self.label_teacher is None:
            raise ValueError("label_teacher_weight > 0 needs set_label_teacher() before training")
        return {"label_teacher": self._teacher_loss(fake)}

    def _teacher_loss(self, fake):
        """Binary cross-entropy between the label channel (as a probability: {0, 1} or
        {-1, 1} coding) and the teacher's vessel probability on the drawn image, scaled
        per patch to [-1, 1] as U-nets see synthetic images. The teacher's side is a fixed
        target: the image gets no gradient from it."""
        image, label = fake[..., :1], fake[..., 1:]
        target = tf.stop_gradient(self.label_teacher(normalize(image, "minmax", axes=(1, 2)), training=False))
        prob = (label + 1.0) / 2.0 if self.label_coding == "signed" else label
        prob = tf.clip_by_value(prob, 1e-6, 1.0 - 1e-6)
        return -tf.reduce_mean(target * tf.math.log(prob) + (1.0 - target) * tf.math.log(1.0 - prob))

    # -- randomness -------------------------------------------------------------------
    def _random(self, salt: int, local_n, tail, dist="normal", minval=0.0, maxval=1.0):
        """Draws for the global batch with a stateless seed, returns this replica's slice."""
        ctx = tf.distribute.get_replica_context()
        replicas = ctx.num_replicas_in_sync if ctx is not None else 1
        rid = ctx.replica_id_in_sync_group if ctx is not None else 0
        step = tf.cast(self.g_optimizer.iterations, tf.int64)
        seed = tf.stack([tf.constant(self.seed, tf.int64), step * SALTS_PER_STEP + salt])
        shape = tf.concat([[local_n * replicas], tf.constant(tail, tf.int32)], axis=0)
        if dist == "normal":
            full = tf.random.stateless_normal(shape, seed)
        else:
            full = tf.random.stateless_uniform(shape, seed, minval=minval, maxval=maxval)
        start = tf.cast(rid, tf.int32) * local_n
        return full[start:start + local_n]

    def _noise(self, salt, n):
        return self._random(salt, n, [self.latent_dim])

    def _augment(self, pairs, use: int):
        """DiffAugment of `pairs` (identity when off); `use` numbers the call in a step."""
        if not self.diff_augment:
            return pairs
        n = tf.shape(pairs)[0]
        return diff_augment(pairs, self.diff_augment,
                            lambda s, tail: self._random(AUGMENT_SALT + 3 * use + s, n, tail, "uniform"))

    def _scale(self):
        ctx = tf.distribute.get_replica_context()
        return 1.0 / (ctx.num_replicas_in_sync if ctx is not None else 1)

    def _fake(self, z, training=True):
        fake = self.generator(z, training=training)
        return threshold_labels_ste(fake, self.label_threshold) if self.threshold_in_training else fake

    def _result(self, values: dict):
        for k, v in values.items():
            self.trackers[k].update_state(v)
        logs = {k: t.result() for k, t in self.trackers.items()}
        if in_multi_worker_mode(self.distribute_strategy):
            # Keras reduces multi-worker step outputs with strategy.reduce(MEAN, axis=0),
            # which rejects scalars; a length-1 vector per replica reduces to a scalar.
            logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs


class DCGAN(GAN):
    """DCGAN with label smoothing and feature matching (Kossen et al.; Salimans et al. 2016)."""

    tracker_names = ("d_loss", "g_loss", "feature_matching", "d_real", "d_fake")

    def __init__(self, *args, label_smoothing: bool = True, feature_matching: str = "replace",
                 feature_matching_weight: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        if feature_matching not in ("replace", "add", "off"):
            raise ValueError(f"feature_matching must be replace/add/off, got {feature_matching!r}")
        self.label_smoothing = label_smoothing
        self.feature_matching = feature_matching
        self.feature_matching_weight = feature_matching_weight

    def train_step(self, data):
        real = data
        n = tf.shape(real)[0]
        scale = self._scale()
        if self.label_smoothing:
            real_t = self._random(1, n, [1], "uniform", 0.7, 1.2)
            fake_t = self._random(2, n, [1], "uniform", 0.0, 0.3)
        else:
            real_t, fake_t = tf.ones([n, 1]), tf.zeros([n, 1])
        fake = self._fake(self._noise(0, n))  # outside the tape: no generator gradient here
        with tf.GradientTape() as tape:
            real_logits, _ = self.critic(self._augment(real, 0), training=True)
            fake_logits, _ = self.critic(self._augment(fake, 1), training=True)
            d_loss = dcgan_discriminator_loss(real_logits, fake_logits, real_t, fake_t)
            scaled_loss = d_loss * scale  # replica gradients are summed
        grads = tape.gradient(scaled_loss, self.critic.trainable_variables)
        self.d_optimizer.apply_gradients(zip(grads, self.critic.trainable_variables))

        with tf.GradientTape() as tape:
            fake = self._fake(self._noise(3, n))
            fake_logits, fake_feat = self.critic(self._augment(fake, 2), training=True)
            _, real_feat = self.critic(self._augment(real, 3), training=True)
            adv = dcgan_generator_loss(fake_logits)
            fm = feature_matching_loss(tf.stop_gradient(real_feat), fake_feat)
            if self.feature_matching == "replace":
                g_loss = fm
            elif self.feature_matching == "add":
                g_loss = adv + self.feature_matching_weight * fm
            else:
                g_loss = adv
            extra = self._with_teacher(fake)
            scaled_loss = (g_loss + self.label_teacher_weight * extra.get("label_teacher", 0.0)) * scale
        grads = tape.gradient(scaled_loss, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        return self._result({"d_loss": d_loss, "g_loss": g_loss, "feature_matching": fm,
                             "d_real": tf.reduce_mean(tf.sigmoid(real_logits)),
                             "d_fake": tf.reduce_mean(tf.sigmoid(fake_logits)), **extra})


class WGANGP(GAN):
    """WGAN-GP (Gulrajani et al. 2017); with a spectral-normalised critic, WGAN-GP-SN.

    Each train step consumes a batch of n_critic × B real pairs: n_critic critic updates,
    update i on rows i, i + n_critic, i + 2·n_critic, ..., then one generator update.
    Strided (not contiguous) chunks make update i see the same rows whether the batch is
    on one device or split contiguously over replicas. With `reuse_reals` a step consumes
    B real pairs and every critic update sees them all (the paper's code).
    """

    tracker_names = ("d_loss", "g_loss", "gradient_penalty", "wasserstein", "d_real", "d_fake")

    def __init__(self, *args, n_critic: int = 5, gp_weight: float = 10.0, reuse_reals: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.n_critic = n_critic
        self.gp_weight = gp_weight
        self.reuse_reals = reuse_reals

    def _scores(self, x):
        return self.critic(x, training=True)[0]

    def train_step(self, data):
        scale = self._scale()
        b = tf.shape(data)[0] if self.reuse_reals else tf.shape(data)[0] // self.n_critic
        for i in range(self.n_critic):
            real = self._augment(data if self.reuse_reals else data[i::self.n_critic], 2 * i)
            fake = self._augment(self._fake(self._noise(2 * i, b)), 2 * i + 1)  # no generator gradient here
            eps = self._random(2 * i + 1, b, [1, 1, 1], "uniform")
            with tf.GradientTape() as tape:
                # one pass over real and fake: the critic has no batch statistics
                scores = self._scores(tf.concat([real, fake], axis=0))
                real_s, fake_s = scores[:b], scores[b:]
                cost = wasserstein_critic_loss(real_s, fake_s)
                gp = gradient_penalty(self._scores, real, fake, eps)
                d_loss = cost + self.gp_weight * gp
                scaled_loss = d_loss * scale  # replica gradients are summed
            grads = tape.gradient(scaled_loss, self.critic.trainable_variables)
            self.d_optimizer.apply_gradients(zip(grads, self.critic.trainable_variables))

        with tf.GradientTape() as tape:
            drawn = self._fake(self._noise(40, b))
            fake = self._augment(drawn, 2 * self.n_critic)
            g_loss = wasserstein_generator_loss(self._scores(fake))
            extra = self._with_teacher(drawn)
            scaled_loss = (g_loss + self.label_teacher_weight * extra.get("label_teacher", 0.0)) * scale
        grads = tape.gradient(scaled_loss, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        return self._result({"d_loss": d_loss, "g_loss": g_loss, "gradient_penalty": gp,
                             "wasserstein": -cost, "d_real": tf.reduce_mean(real_s),
                             "d_fake": tf.reduce_mean(fake_s), **extra})


class DPWGANGP(WGANGP):
    """WGAN-GP(-SN) whose critic updates are DP-SGD steps (training/dp.py).

    Each train step consumes n_critic Poisson samples of the real pairs, given as
    (pairs concatenated, sizes). For each: per-example gradients of the per-example loss
    (Wasserstein term and that example's gradient penalty, each real pair with its own
    fake), clipped to `l2_clip`, summed, Gaussian noise of std noise_multiplier · l2_clip
    added, divided by the expected batch size. The noise is seeded by `noise_seed`, which
    must stay secret (train-gan draws it from the OS). Logged losses are means over the
    drawn batch and are not privatised; the critic's weights and the generator are.
    """

    tracker_names = ("d_loss", "g_loss", "batch_size", "grad_norm", "clipped_fraction")

    def __init__(self, *args, l2_clip: float = 1.0, noise_multiplier: float = 1.0, expected_batch: float = 32.0,
                 noise_seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.l2_clip = l2_clip
        self.noise_multiplier = noise_multiplier
        self.expected_batch = expected_batch
        self.noise_seed = noise_seed
        # only a spectral-normalised critic has a (data-independent) update to run per step
        self.spectral = any(isinstance(layer, keras.layers.SpectralNormalization) for layer in self.critic.layers)

    def _example_losses(self, real, fake, eps):
        from tf_vesselgan.training.dp import wgan_critic_losses

        # training=False: the spectral norm's power iteration (an assignment) ran once
        # for the update in train_step; nothing else in a DP critic depends on the flag
        return wgan_critic_losses(lambda x: self.critic(x, training=False)[0], real, fake, eps, self.gp_weight)

    def train_step(self, data):
        from tf_vesselgan.training.dp import clip_sum_noise, per_example_gradients

        pairs, sizes = data
        reals = tf.split(pairs, sizes, num=self.n_critic)
        for i in range(self.n_critic):
            b = sizes[i]
            real = self._augment(reals[i], 2 * i)
            fake = self._augment(self._fake(self._noise(2 * i, b)), 2 * i + 1)
            eps = self._random(2 * i + 1, b, [1, 1, 1], "uniform")
            if self.spectral:
                self.critic(real[:1], training=True)  # the power iteration's update, not a training pass
            variables = self.critic.trainable_variables
            # a Poisson sample can be empty; then the update is the noise alone (the loop that
            # pfor falls back to cannot stack zero per-example gradients)
            losses, grads = tf.cond(
                b > 0, lambda: per_example_gradients(self._example_losses, variables, (real, fake, eps)),
                lambda: (tf.zeros([0]), [tf.zeros([0, *v.shape]) for v in variables]))
            seed = tf.stack([tf.constant(self.noise_seed, tf.int64), tf.cast(self.d_optimizer.iterations, tf.int64)])
            grads, norms = clip_sum_noise(grads, self.l2_clip, self.noise_multiplier, self.expected_batch, seed)
            self.d_optimizer.apply_gradients(zip(grads, self.critic.trainable_variables))

        b = tf.cast(tf.round(self.expected_batch), tf.int32)
        with tf.GradientTape() as tape:
            fake = self._augment(self._fake(self._noise(40, b)), 2 * self.n_critic)
            g_loss = wasserstein_generator_loss(self._scores(fake))
        grads = tape.gradient(g_loss, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        # of the last critic update: its mean loss, drawn batch size, per-example gradient
        # norms before clipping and the fraction of examples clipped
        return self._result({"d_loss": tf.reduce_mean(losses), "g_loss": g_loss,
                             "batch_size": tf.cast(sizes[-1], tf.float32), "grad_norm": tf.reduce_mean(norms),
                             "clipped_fraction": tf.reduce_mean(tf.cast(norms > self.l2_clip, tf.float32))})
