"""Tiny exported models shared by the serving tests (run folders written directly)."""
import json

import pytest


def fake_gan_run(root, width=0.03, threshold=0.8, **gan):
    """A complete GAN run folder; `gan`: further GANConfig keys (e.g. upsample)."""
    from tf_vesselgan.config import ExperimentConfig, GANConfig, save_config
    from tf_vesselgan.models.generator import build_generator

    root.mkdir(parents=True, exist_ok=True)
    g = GANConfig(width=width, label_threshold=threshold, **gan)
    save_config(ExperimentConfig(gan=g), root / "config.yaml")
    (root / "run.json").write_text(json.dumps({"kind": "gan", "patch_size": 96, "state": "complete"}))
    gen = build_generator(g.latent_dim, width, 96, upsample=g.upsample, label_head=g.label_head)
    gen.save(str(root / "generator.keras"))
    return gen


def fake_unet_run(root, width=0.125, mean=100.0, std=20.0):
    from tf_vesselgan.config import ExperimentConfig, save_config
    from tf_vesselgan.models.unet import build_unet

    root.mkdir(parents=True, exist_ok=True)
    save_config(ExperimentConfig(), root / "config.yaml")
    (root / "run.json").write_text(json.dumps({"kind": "unet", "normalization": "global", "mean": mean, "std": std,
                                               "threshold": 0.5, "patch_size": 32, "state": "complete"}))
    unet = build_unet(width)
    unet.save(str(root / "unet.keras"))
    return unet


@pytest.fixture(scope="package")
def exported(tmp_path_factory):
    from tf_vesselgan.serving.export import export_model, write_models_config

    root = tmp_path_factory.mktemp("serving")
    gen = fake_gan_run(root / "gan")
    unet = fake_unet_run(root / "unet")
    export_model(root / "gan", root / "models" / "generator")
    export_model(root / "unet", root / "models" / "unet")
    write_models_config(root / "models.config", {"generator": str(root / "models" / "generator"),
                                                  "unet": str(root / "models" / "unet")})
    return {"root": root, "generator": gen, "unet": unet}
