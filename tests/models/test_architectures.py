"""Generator/critic shapes, parameter counts, config round-trips."""
import keras
import numpy as np
import pytest

from tf_vesselgan.models.critic import build_critic
from tf_vesselgan.models.generator import build_generator
from tf_vesselgan.models.minibatch import MinibatchDiscrimination


def test_generator_at_paper_width_matches_the_official_parameter_count():
    g = build_generator(100, 1.0, 96)
    assert g.output_shape == (None, 96, 96, 2)
    # 5x5 transposed convs: 100*1536 + 1536*768 + 768*384 + 384*192 + 192*96 + 96*2 kernels,
    # BN (gamma, beta, mean, var) after all but the last, bias on the last
    kernels = 25 * (100 * 1536 + 1536 * 768 + 768 * 384 + 384 * 192 + 192 * 96 + 96 * 2)
    bn = 4 * (1536 + 768 + 384 + 192 + 96)
    assert g.count_params() == kernels + bn + 2
    assert 42.9e6 < g.count_params() < 43.1e6
    transposed = [l for l in g.layers if isinstance(l, keras.layers.Conv2DTranspose)]
    assert len(transposed) == 6


@pytest.mark.parametrize("kind", ["dcgan", "wgan-gp", "wgan-gp-sn"])
def test_critics_take_pairs_and_round_trip(kind):
    d = build_critic(kind, 0.05, 96)
    x = np.random.default_rng(0).normal(size=(3, 96, 96, 2)).astype(np.float32)
    score, feat = d(x)
    assert score.shape == (3, 1) and feat.shape[1:3] == (3, 3)
    names = " ".join(type(l).__name__ for l in d.layers)
    assert ("SpectralNormalization" in names) == (kind == "wgan-gp-sn")
    assert ("GroupNormalization" in names) == (kind == "wgan-gp")
    assert ("BatchNormalization" in names) == (kind == "dcgan")
    clone = keras.Model.from_config(d.get_config(), custom_objects={"MinibatchDiscrimination": MinibatchDiscrimination})
    clone.set_weights(d.get_weights())
    assert np.allclose(clone(x)[0], score, atol=1e-5)


def test_minibatch_discrimination_matches_numpy():
    layer = MinibatchDiscrimination(num_kernels=3, kernel_dim=2)
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    out = keras.ops.convert_to_numpy(layer(x))
    t = keras.ops.convert_to_numpy(layer.t)
    m = (x @ t).reshape(4, 3, 2)
    ref = np.array([[sum(np.exp(-np.abs(m[i, b] - m[j, b]).sum()) for j in range(4) if j != i)
                     for b in range(3)] for i in range(4)])
    assert np.allclose(out[:, :5], x) and np.allclose(out[:, 5:], ref, atol=1e-5)
    assert MinibatchDiscrimination.from_config(layer.get_config()).num_kernels == 3


def test_bad_patch_size_is_an_error():
    with pytest.raises(ValueError, match="patch_size"):
        build_generator(100, 0.1, 64)


def test_resize_upsampling_has_no_checkerboard_and_the_paper_layout_has():
    from tf_vesselgan.models.generator import _up

    def upsampled(kind):  # a constant map through one ×2 layer with a constant kernel
        x = keras.Input((6, 6, 4))
        model = keras.Model(x, _up(x, 3, "up", kind, use_bias=False))
        for w in model.weights:
            w.assign(np.ones(w.shape, np.float32))
        return np.asarray(model(np.ones((1, 6, 6, 4), np.float32)))[0, 2:-2, 2:-2]

    assert upsampled("transposed").std() > 1.0  # 5x5 stride 2: taps alternate, a periodic pattern
    assert np.allclose(upsampled("resize"), upsampled("resize")[0, 0])
    g = build_generator(100, 0.125, 96, upsample="resize")
    assert g.output_shape == (None, 96, 96, 2)
    assert [type(l).__name__ for l in g.layers].count("Conv2DTranspose") == 1  # the 1x1 -> 5x5 projection only
    with pytest.raises(ValueError, match="upsample"):
        build_generator(100, 0.125, 96, upsample="bilinear")


def test_a_label_head_of_its_own_sees_the_drawn_image():
    """label_head "image": the last shared layer draws the image only; the label comes from
    a head fed by the 48x48 features and the image, so changing only the image layer's
    weights changes the label, and the shared layout has no such head."""
    g = build_generator(100, 0.125, 96, label_head="image")
    assert g.output_shape == (None, 96, 96, 2)
    assert g.get_layer("up5").kernel.shape[-2] == 1  # Conv2DTranspose kernel: (h, w, out, in)
    assert g.get_layer("label_out").kernel.shape == (3, 3, 12 + 1, 1)
    z = np.random.default_rng(0).normal(size=(4, 100)).astype(np.float32)
    before = np.asarray(g(z, training=False))
    up5 = g.get_layer("up5")
    up5.kernel.assign(up5.kernel * 2.0)
    after = np.asarray(g(z, training=False))
    assert np.abs(after[..., 1] - before[..., 1]).max() > 1e-4
    shared = build_generator(100, 0.125, 96)
    assert "label_out" not in [layer.name for layer in shared.layers]
    assert shared.count_params() < g.count_params()
    with pytest.raises(ValueError, match="label_head"):
        build_generator(100, 0.125, 96, label_head="separate")


def test_official_critic_layouts_match_the_papers_code():
    # DCGAN: 4 bias-free 5x5 convs with batch norm on each, a 50-channel conv to 2x2, dense 200,
    # minibatch discrimination (100 kernels of 16), dense 300 -> 1
    d = build_critic("dcgan", 1.0, 96, layout="official")
    convs = 25 * (2 * 96 + 96 * 192 + 192 * 384 + 384 * 768) + 25 * 768 * 50
    bn = 4 * (96 + 192 + 384 + 768)
    assert d.count_params() == convs + bn + (200 * 200 + 200) + 200 * 100 * 16 + (300 + 1)
    assert d.output_shape == [(None, 1), (None, 2, 2, 50)]  # features: the last conv, as the official
    names = [type(l).__name__ for l in d.layers]
    assert names.count("BatchNormalization") == 4 and names.count("Conv2D") == 5
    # WGAN-GP: instance norm on all 5 convs (the mirror leaves the first alone), no conv biases
    w = build_critic("wgan-gp", 1.0, 96, layout="official")
    mirror = build_critic("wgan-gp", 1.0, 96)
    assert [type(l).__name__ for l in w.layers].count("GroupNormalization") == 5
    assert [type(l).__name__ for l in mirror.layers].count("GroupNormalization") == 4
    assert not any(getattr(l, "use_bias", False) for l in w.layers)
    assert build_critic("wgan-gp-sn", 1.0, 96, layout="official").output_shape == [(None, 1), (None, 3, 3, 1536)]
    with pytest.raises(ValueError, match="at least 96"):
        build_critic("dcgan", 0.125, 32, layout="official")
    assert build_critic("dcgan", 0.125, 32, minibatch_discrimination=False, layout="official").output_shape[0] == (None, 1)


def test_info_model_reports_the_layouts(cli):
    code, out, _ = cli("info-model", "--arch", "dcgan", "--critic-layout", "official")
    assert code == 0 and "critic      11,007,861 parameters" in out and "official critic" in out
    code, shared, _ = cli("info-model", "--width", "0.125")
    code, head, _ = cli("info-model", "--width", "0.125", "--label-head", "image")
    assert code == 0 and "label head of its own" in head

    def generator_parameters(text):
        return int(text.split("generator")[1].split("parameters")[0].replace(",", ""))

    assert generator_parameters(head) == generator_parameters(shared) + 3_465
    code, _, err = cli("info-model", "--patch-size", "64")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "patch_size" in err
    for width in ("0", "-1", "100", "wide"):  # gan.width's range, before any model is built
        code, _, err = cli("info-model", "--width", width)
        assert code == 2 and "--width" in err and "Traceback" not in err
