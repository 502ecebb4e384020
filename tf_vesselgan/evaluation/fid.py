"""Distribution distances between real and synthetic patches: FID and KID.

Split as activations → statistics → distance, in float64 (TF-GAN, MONAI). Feature
spaces: Inception-v3 pool features (2048-d) of the image channel, or the encoder of a
U-net trained on real patches (an offline "domain" space for air-gapped hospitals).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import linalg

from tf_vesselgan.errors import UserError


def statistics(acts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(acts, np.float64)
    return a.mean(axis=0), np.cov(a, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """‖μ₁−μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½) (Heusel et al. 2017), float64.

    When the product is near-singular the square root is taken of (Σ₁+εI)(Σ₂+εI),
    as the reference implementations do.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    if not np.isfinite(covmean).all():
        off = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + off) @ (s2 + off))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def kid(x: np.ndarray, y: np.ndarray, subset_size: int = 1000, subsets: int = 10, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: unbiased MMD² with k(a,b) = (a·b/d + 1)³ (Bińkowski et al.
    2018), averaged over random subsets; returns (mean, sd).

    Subsets hold at most half of the smaller set, so they differ and the sd measures
    something (subsets of the whole set would all be equal and report sd 0)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    rng = np.random.default_rng(seed)
    m = min(subset_size, min(len(x), len(y)) // 2)
    if m < 2:
        raise UserError("KID needs at least 4 samples on each side")
    vals = []
    for _ in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        vals.append(mmd2_unbiased(a, b))
    return float(np.mean(vals)), float(np.std(vals))


def mmd2_unbiased(a: np.ndarray, b: np.ndarray) -> float:
    d = a.shape[1]
    kxx = (a @ a.T / d + 1) ** 3
    kyy = (b @ b.T / d + 1) ** 3
    kxy = (a @ b.T / d + 1) ** 3
    m, n = len(a), len(b)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


# ------------------------------------------------------------------ feature extractors


def inception_extractor(weights: str | None = "imagenet"):
    """Inception-v3 → 2048-d average-pool features of 299×299×3 inputs in [−1, 1].

    Args:
        weights: "imagenet" (Keras downloads once into ~/.keras and caches), a path to
            the no-top .h5 weights file, or None for random weights (tests only).
    """
    import keras

    try:
        net = keras.applications.InceptionV3(include_top=False, pooling="avg", input_shape=(299, 299, 3),
                                             weights=weights)
    except Exception as exc:  # download failures surface as several exception types
        if weights == "imagenet":
            raise UserError("cannot load Keras' ImageNet Inception-v3 weights (offline?): download "
                            "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 on a connected machine and "
                            "pass --inception-weights FILE, or use --features unet:RUN") from None
        raise UserError(f"cannot load Inception weights from {weights}: {str(exc).splitlines()[0][:120]}") from None

    def extract(images: np.ndarray, batch: int = 32) -> np.ndarray:
        import tensorflow as tf

        out = []
        for i in range(0, len(images), batch):
            x = tf.convert_to_tensor(images[i:i + batch, ..., None], tf.float32)
            x = tf.image.resize(tf.repeat(x, 3, axis=-1), (299, 299), method="bilinear")
            out.append(net(x, training=False).numpy())
        return np.concatenate(out).astype(np.float64)

    return extract


def unet_extractor(run):
    from tf_vesselgan.models.unet import encoder_of
    from tf_vesselgan.training.unet_trainer import load_unet

    model, status = load_unet(run)
    if status.get("normalization") == "global":
        raise UserError(f"--features unet:{run}: that U-net uses global z-scoring; synthetic pairs have no "
                        "intensity scale. Use a U-net trained with unet.normalization minmax")
    enc = encoder_of(model)

    def extract(images: np.ndarray, batch: int = 64) -> np.ndarray:
        from tf_vesselgan.data.normalization import normalize

        x = normalize(images.astype(np.float32), status["normalization"])
        return np.concatenate([enc(x[i:i + batch, ..., None], training=False).numpy()
                               for i in range(0, len(x), batch)]).astype(np.float64)

    return extract


def load_images(source, n: int, split: str = "train", seed: int = 0) -> np.ndarray:
    """Image channels in [−1, 1]: from a samples.npz (or its folder) or a patches folder."""
    p = Path(source)
    if (p / "manifest.json").exists():
        from tf_vesselgan.data.pipeline import image_channels

        return image_channels(p, n, split, seed)
    from tf_vesselgan.training.sampling import load_samples

    image, _ = load_samples(p)
    return image[:n]


def distance_table(real, fakes: list, features: str, n: int = 2000, inception_weights=None, seed: int = 0):
    """Rows of (name, n_real, n_fake, FID, KID mean, KID sd) for every fake source."""
    if features == "inception":
        extract = inception_extractor(inception_weights or "imagenet")
    elif features.startswith("unet:"):
        extract = unet_extractor(features[5:])
    else:
        raise UserError(f"--features must be inception or unet:RUN, got {features!r}")
    real_act = extract(load_images(real, n, seed=seed))
    mu_r, s_r = statistics(real_act)
    rows = []
    for fake in fakes:
        act = extract(load_images(fake, n, seed=seed))
        mu, s = statistics(act)
        k, ksd = kid(real_act, act, seed=seed)
        rows.append({"fake": str(fake), "n_real": len(real_act), "n_fake": len(act),
                     "fid": frechet_distance(mu_r, s_r, mu, s), "kid": k, "kid_sd": ksd})
    return rows
