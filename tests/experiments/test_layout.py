"""The study folder layout keeps the names existing study folders have on disk."""
from pathlib import Path

from tf_vesselgan.experiments.layout import Layout


def test_stage_folders_keep_their_names():
    at = Layout(Path("s"))
    names = [at.phantom, at.patches, at.gan("dcgan"), at.samples("wgan-gp"), at.unet(Layout.unet_name("real")),
             at.unet(Layout.unet_name("synthetic", "dcgan")), at.evaluation(Layout.unet_name("both", "wgan-gp"), "val"),
             at.fid, at.privacy("dcgan"), at.curve("dcgan", 10.0), at.curve("dcgan", 2.5), at.second_phantom,
             at.transfer_patches(), at.transfer_patches(3), at.transfer_unet(Layout.transfer_tag("reference")),
             at.transfer_evaluation(Layout.transfer_tag("pretrained", 5)), at.file("report.md")]
    assert [str(p) for p in names] == [
        "s/phantom", "s/patches", "s/gan_dcgan", "s/samples_wgan-gp", "s/unet_real", "s/unet_synthetic_dcgan",
        "s/eval_both_wgan-gp_val", "s/fid", "s/privacy_dcgan", "s/curve_dcgan_10min", "s/curve_dcgan_2.5min",
        "s/t_phantom", "s/t_patches", "s/t_patches_n3", "s/t_unet_reference", "s/t_eval_pretrained_n5", "s/report.md"]
    point = at.curve("dcgan", 10)
    assert [Layout.point_samples(point).name, Layout.point_unet(point).name, Layout.point_evaluation(point).name] == \
        ["samples", "unet", "eval_test"]
