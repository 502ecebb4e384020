"""GAN losses as small pure functions (per-replica means; the caller scales for replicas)."""
from __future__ import annotations

import tensorflow as tf


def dcgan_discriminator_loss(real_logits, fake_logits, real_targets, fake_targets):
    """Binary cross-entropy with smoothed targets (Salimans et al. 2016; the paper:
    real ~ U(0.7, 1.2), fake ~ U(0, 0.3))."""
    real = tf.nn.sigmoid_cross_entropy_with_logits(labels=real_targets, logits=real_logits)
    fake = tf.nn.sigmoid_cross_entropy_with_logits(labels=fake_targets, logits=fake_logits)
    return tf.reduce_mean(real) + tf.reduce_mean(fake)


def dcgan_generator_loss(fake_logits):
    """Non-saturating generator loss −log D(G(z)) (Goodfellow et al. 2014)."""
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(fake_logits), logits=fake_logits))


def feature_matching_loss(real_features, fake_features):
    """L1 distance between the batch-mean features of real and fake (Salimans et al. 2016)."""
    axes = list(range(len(real_features.shape) - 1))
    return tf.reduce_mean(tf.abs(tf.reduce_mean(real_features, axes) - tf.reduce_mean(fake_features, axes)))


def wasserstein_critic_loss(real_scores, fake_scores):
    """E[D(fake)] − E[D(real)] (Arjovsky et al. 2017)."""
    return tf.reduce_mean(fake_scores) - tf.reduce_mean(real_scores)


def wasserstein_generator_loss(fake_scores):
    return -tf.reduce_mean(fake_scores)
