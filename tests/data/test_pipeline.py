"""tf.data streaming: shapes, ranges, determinism, distribution."""
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import make_case
from tf_vesselgan.data.pipeline import make_dataset


@pytest.fixture(scope="module")
def patches_dir(tmp_path_factory):
    from tf_vesselgan.config import load_config
    from tf_vesselgan.data.build import build_patches

    root = tmp_path_factory.mktemp("pipe")
    for i in range(4):
        make_case(root / "data", f"c{i}", seed=i)
    cfg = load_config(None, {"data": {"patch_size": 16, "n_vessel": 8, "n_random": 8, "shard_size": 5,
                                      "split": {"train": 0.5, "val": 0.25, "test": 0.25}}})
    build_patches(root / "data", root / "out", cfg, seed=0, progress=False)
    return root / "out"


def test_gan_batches_are_pairs_in_range(patches_dir):
    batches = list(make_dataset(patches_dir, "train", batch_size=4, mode="gan"))
    assert len(batches) == 32 // 4
    x = np.concatenate([b.numpy() for b in batches])
    assert x.shape == (32, 16, 16, 2)
    assert x[..., 0].min() >= -1.0 and x[..., 0].max() <= 1.0
    assert np.allclose(x[..., 0].min(axis=(1, 2)), -1) and np.allclose(x[..., 0].max(axis=(1, 2)), 1)
    assert set(np.unique(x[..., 1])) <= {0.0, 1.0}


def test_unet_batches_are_zscored_with_training_stats(patches_dir):
    import json

    m = json.loads((patches_dir / "manifest.json").read_text())
    imgs = np.concatenate([i.numpy() for i, _ in make_dataset(patches_dir, "train", 8, mode="unet", shuffle=False)])
    raw = imgs * m["normalization"]["std"] + m["normalization"]["mean"]
    assert abs(imgs.mean()) < 1e-4 and abs(imgs.std() - 1) < 1e-3  # train stats → exactly standardised
    assert raw.min() > 0
    per = np.concatenate([i.numpy() for i, _ in make_dataset(patches_dir, "val", 8, mode="unet", normalization="per_patch")])
    assert np.allclose(per.mean(axis=(1, 2, 3)), 0, atol=1e-4)


def test_same_seed_same_order_different_seed_different(patches_dir):
    a = np.concatenate([b.numpy() for b in make_dataset(patches_dir, "train", 4, seed=5)])
    b = np.concatenate([b.numpy() for b in make_dataset(patches_dir, "train", 4, seed=5)])
    c = np.concatenate([b.numpy() for b in make_dataset(patches_dir, "train", 4, seed=6)])
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.allclose(np.sort(a.ravel()), np.sort(c.ravel()))  # same patches, other order


def test_distribute_datasets_from_function_splits_the_batch(patches_dir):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    dist = strategy.distribute_datasets_from_function(
        lambda ctx: make_dataset(patches_dir, "train", 8, input_context=ctx))
    first = next(iter(dist))
    parts = strategy.experimental_local_results(first)
    assert [p.shape[0] for p in parts] == [4, 4]
