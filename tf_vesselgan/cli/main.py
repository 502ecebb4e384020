"""The `vesselgan` command: argument parsing only; each subcommand calls a library function.

Expected errors (`UserError`) become one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import sys

from tf_vesselgan.errors import UserError


def _shape(text: str) -> int:
    v = int(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    from tf_vesselgan.cli import commands

    p = argparse.ArgumentParser(prog="vesselgan", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"%(prog)s {__import__('tf_vesselgan').__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("phantom", help="write the built-in TOF-MRA-like phantom data set")
    s.add_argument("--out", required=True, help="output folder (images/, labels/, masks/)")
    s.add_argument("--cases", type=_shape, default=6)
    s.add_argument("--shape", type=_shape, nargs=3, default=[128, 128, 64], metavar=("X", "Y", "Z"))
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=commands.phantom)

    s = sub.add_parser("patches", help="validate NIfTI cases, split by patient, write patch shards")
    s.add_argument("--data", required=True, help="images/+labels/ folder or nnU-Net v2 data set")
    s.add_argument("--out", required=True, help="output patches folder")
    s.add_argument("--config", help="experiment YAML (its data: section is used)")
    s.add_argument("--seed", type=int)
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=commands.patches)

    s = sub.add_parser("info", help="per-case summary of a data folder")
    s.add_argument("--data", required=True)
    s.set_defaults(func=commands.info)

    s = sub.add_parser("train-gan", help="train DCGAN / WGAN-GP / WGAN-GP-SN on patch shards")
    s.add_argument("--arch", choices=["dcgan", "wgan-gp", "wgan-gp-sn"])
    s.add_argument("--patches", required=True, help="output folder of `vesselgan patches`")
    s.add_argument("--out", required=True, help="run folder")
    s.add_argument("--config", help="experiment YAML (its gan: section)")
    s.add_argument("--epochs", type=_shape)
    s.add_argument("--batch-size", type=_shape)
    s.add_argument("--width", type=float, help="multiplies the paper's channel counts (1.0 = paper)")
    s.add_argument("--steps-per-epoch", type=_shape)
    s.add_argument("--resume", action="store_true", help="continue the run folder from its last checkpoint")
    s.add_argument("--seed", type=int)
    s.set_defaults(func=commands.train_gan)

    s = sub.add_parser("sample", help="synthetic image+label pairs from a trained GAN run")
    s.add_argument("--run", required=True)
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threshold", type=float, help="label threshold (default: the run's, 0.8)")
    s.add_argument("--format", choices=["npz", "nifti", "png"], default="npz")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=commands.sample)

    s = sub.add_parser("train-unet", help="train the half U-net on real, synthetic or both")
    s.add_argument("--train", required=True, choices=["real", "synthetic", "both"])
    s.add_argument("--patches", required=True, help="patches folder (real pairs, validation, statistics)")
    s.add_argument("--samples", help="samples.npz (or its folder) from `vesselgan sample`")
    s.add_argument("--out", required=True)
    s.add_argument("--init", help="U-net run folder to start from (transfer learning)")
    s.add_argument("--config")
    s.add_argument("--epochs", type=_shape)
    s.add_argument("--width", type=float, help="multiplies the half U-net's filters (1.0 = 32..512)")
    s.add_argument("--steps-per-epoch", type=_shape)
    s.add_argument("--hparams", help="JSON of learning_rate/dropout (e.g. from `vesselgan tune`)")
    s.add_argument("--seed", type=int)
    s.set_defaults(func=commands.train_unet)

    for name, helptext in (("segment", "segment whole volumes (probability + binary NIfTI)"),
                           ("evaluate", "segment and score per patient: Dice, 95HD (mm), precision, recall")):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("--model", required=True, help="U-net run folder")
        s.add_argument("--data", required=True)
        s.add_argument("--cases", default="test", help="test|val|train|all|ID,ID,...")
        s.add_argument("--out", required=True)
        s.add_argument("--threshold", type=float)
        s.add_argument("--overwrite", action="store_true")
        s.set_defaults(func=commands.segment, evaluate=name == "evaluate")

    s = sub.add_parser("tune", help="keras-tuner search of U-net learning rate and dropout, then final training")
    s.add_argument("--train", default="real", choices=["real", "synthetic", "both"])
    s.add_argument("--patches", required=True)
    s.add_argument("--samples")
    s.add_argument("--out", required=True, help="tuning folder (rerun to resume)")
    s.add_argument("--config")
    s.add_argument("--trials", type=_shape, help="max trials (unet.max_trials)")
    s.add_argument("--no-final", action="store_true", help="skip training the final model")
    s.set_defaults(func=commands.tune)

    s = sub.add_parser("fid", help="FID and KID between real patches and synthetic samples (Table 1)")
    s.add_argument("--real", required=True, help="patches folder (train split) or samples.npz")
    s.add_argument("--fake", required=True, nargs="+", help="samples.npz files or folders")
    s.add_argument("--features", default="inception", help="inception | unet:RUN")
    s.add_argument("--inception-weights", help="no-top Inception-v3 .h5 weights (offline machines)")
    s.add_argument("--n", type=_shape, default=2000, help="samples per side")
    s.add_argument("--out", help="folder for fid.csv and fid.md")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=commands.fid)

    s = sub.add_parser("info-model", help="parameter counts of the generator and critic")
    s.add_argument("--arch", choices=["dcgan", "wgan-gp", "wgan-gp-sn"], default="wgan-gp-sn")
    s.add_argument("--width", type=float, default=1.0)
    s.add_argument("--patch-size", type=int, default=96)
    s.set_defaults(func=commands.info_model)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"vesselgan {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vesselgan {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
