"""The `vesselgan` command: argument parsing only; each subcommand calls a library function.

Expected errors (`UserError`) become one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import errno
import sys

from tf_vesselgan.errors import UserError


def _shape(text: str) -> int:
    v = int(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {v}")
    return v


def config_number(section: str, key: str):
    """An argparse type: a float in the valid range of the config key `<section>.<key>` it mirrors."""
    import dataclasses

    from tf_vesselgan import config

    cls = {"study": config.StudyConfig, "gan": config.GANConfig}[section]
    low, high = next(f for f in dataclasses.fields(cls) if f.name == key).metadata["range"]

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not low <= v <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low:g}, {high:g}], got {text}")
        return v
    return parse


def build_parser() -> argparse.ArgumentParser:
    from tf_vesselgan.cli import commands

    p = argparse.ArgumentParser(prog="vesselgan", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"%(prog)s {__import__('tf_vesselgan').__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_data_commands, _training_commands, _evaluation_commands, _serving_commands):
        add(sub, commands)
    return p


def _data_commands(sub, commands) -> None:
    """phantom, patches, info."""
    s = sub.add_parser("phantom", help="write the built-in TOF-MRA-like phantom data set")
    s.add_argument("--out", required=True, help="output folder (images/, labels/, masks/)")
    s.add_argument("--cases", type=_shape, default=6)
    s.add_argument("--shape", type=_shape, nargs=3, default=[128, 128, 64], metavar=("X", "Y", "Z"))
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--inflow-mm", type=config_number("study", "phantom_inflow_mm"), default=60.0,
                   help="flow path (mm) over which the vessels' inflow signal saturates (study.phantom_inflow_mm)")
    s.add_argument("--fat", type=config_number("study", "phantom_fat"), default=0.78,
                   help="mean intensity of the fat ring, brain tissue about 0.32 (study.phantom_fat)")
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


def _training_commands(sub, commands) -> None:
    """train-gan, sample, train-unet, tune."""
    s = sub.add_parser("train-gan", help="train DCGAN / WGAN-GP / WGAN-GP-SN on patch shards")
    s.add_argument("--arch", choices=["dcgan", "wgan-gp", "wgan-gp-sn"])
    s.add_argument("--patches", required=True, help="output folder of `vesselgan patches`")
    s.add_argument("--out", required=True, help="run folder")
    s.add_argument("--config", help="experiment YAML (its gan: section)")
    s.add_argument("--epochs", type=_shape)
    s.add_argument("--batch-size", type=_shape)
    s.add_argument("--width", type=float, help="multiplies the paper's channel counts (1.0 = paper)")
    s.add_argument("--steps-per-epoch", type=_shape)
    s.add_argument("--max-seconds", type=float, help="training budget in machine-seconds (gan.max_seconds)")
    s.add_argument("--resume", action="store_true", help="continue the run folder from its last checkpoint")
    s.add_argument("--seed", type=int)
    s.set_defaults(func=commands.train_gan)

    s = sub.add_parser("sample", help="synthetic image+label pairs from a trained GAN run or an exported generator")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="GAN run folder")
    src.add_argument("--model", help="exported generator version folder, e.g. saved_models/vessel_pairs_icbm/4")
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threshold", type=float, help="label threshold in [-1, 1] (default: the run's; exports bake theirs in)")
    s.add_argument("--format", choices=["npz", "nifti", "png"], default="npz")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=commands.sample)

    s = sub.add_parser("train-unet", help="train the half U-net on real, synthetic or both")
    s.add_argument("--train", required=True, choices=["real", "synthetic", "both"])
    s.add_argument("--patches", required=True, help="patches folder (real pairs, validation, statistics)")
    s.add_argument("--samples", nargs="+", metavar="SAMPLES",
                   help="samples.npz (or its folder) from `vesselgan sample`; several are pooled, "
                        "e.g. the pairs of several generators")
    s.add_argument("--out", required=True)
    s.add_argument("--init", help="U-net run folder to start from (transfer learning)")
    s.add_argument("--config")
    s.add_argument("--epochs", type=_shape)
    s.add_argument("--width", type=float, help="multiplies the half U-net's filters (1.0 = 32..512)")
    s.add_argument("--steps-per-epoch", type=_shape)
    s.add_argument("--hparams", help="JSON of learning_rate/dropout (e.g. from `vesselgan tune`)")
    s.add_argument("--seed", type=int)
    s.set_defaults(func=commands.train_unet)


def _evaluation_commands(sub, commands) -> None:
    """segment, evaluate, fid, privacy, run."""
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
    s.add_argument("--samples", nargs="+", metavar="SAMPLES", help="as train-unet --samples")
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

    s = sub.add_parser("privacy", help="privacy audit of a trained GAN: memorisation, membership inference, identifiers")
    s.add_argument("--run", required=True, help="GAN run folder")
    s.add_argument("--patches", required=True, help="the patches folder the GAN was trained on")
    s.add_argument("--out", required=True, help="folder for privacy.md, privacy.json and figures")
    s.add_argument("--n", type=_shape, default=2000, help="synthetic samples to generate (ignored with --samples)")
    s.add_argument("--samples", help="audit this samples.npz instead of generating (it is also scanned for identifiers)")
    s.add_argument("--features", help="also compare in the encoder space of a U-net: unet:RUN")
    s.add_argument("--data", help="the source data folder: also search for its file names, path and affines")
    s.add_argument("--export", help="an exported model folder to scan for identifiers")
    s.add_argument("--n-attack", type=_shape, default=1000, help="members and non-members per attack")
    s.add_argument("--max-memorised", type=float, default=0.10)
    s.add_argument("--max-auc", type=float, default=0.60)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=commands.privacy)

    s = sub.add_parser("run", help="an experiment of experiments/*.yaml end to end (resumable), with report.md")
    s.add_argument("config", help="experiment YAML, e.g. experiments/demo.yaml")
    s.add_argument("--data", help="data folder (not needed when the study uses the built-in phantom)")
    s.add_argument("--out", help="experiment folder (default out/<name>)")
    s.add_argument("--transfer-data", help="the second data set of a transfer study")
    s.set_defaults(func=commands.run)


def _serving_commands(sub, commands) -> None:
    """export, serve, client, info-model."""
    s = sub.add_parser("export", help="SavedModel of a generator or U-net run in TF Serving's layout NAME/VERSION/")
    s.add_argument("--run", required=True, help="GAN or U-net run folder")
    s.add_argument("--out", required=True, help="model folder, e.g. saved_models/generator")
    s.add_argument("--version", type=int, help="version number (default: the next one)")
    s.add_argument("--name", help="model name for serving (default: the --out folder's name)")
    s.add_argument("--threshold", type=float, help="label threshold baked in (default: the run's)")
    s.add_argument("--models-config", default="serving/models.config",
                   help="TF Serving model_config_list to add the model to ('' to skip)")
    s.add_argument("--base-path", help="base_path written to the models config (default: absolute --out)")
    s.set_defaults(func=commands.export)

    s = sub.add_parser("serve", help="built-in server with TF Serving's REST and gRPC APIs")
    s.add_argument("--model-config", default="serving/models.config")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--rest-port", type=int, default=8501)
    s.add_argument("--grpc-port", type=int, default=8500)
    s.add_argument("--max-samples", type=_shape, default=1024, help="samples per request")
    s.add_argument("--max-body", type=_shape, default=64 * 1024 * 1024, help="bytes per REST request body")
    s.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    s.add_argument("--read-timeout", type=float, default=10.0,
                   help="seconds a REST connection may stay silent before it is closed")
    s.add_argument("--max-connections", type=_shape, default=128, help="open REST connections at once")
    s.set_defaults(func=commands.serve)

    s = sub.add_parser("client", help="talk to a served generator (TF Serving or `vesselgan serve`)")
    csub = s.add_subparsers(dest="client_command", required=True)
    c = csub.add_parser("sample", help="synthetic pairs from a served generator, written as by `vesselgan sample`")
    c.add_argument("--url", help="REST endpoint, e.g. http://127.0.0.1:8501")
    c.add_argument("--grpc", help="gRPC endpoint, e.g. 127.0.0.1:8500")
    c.add_argument("--model", default="generator")
    c.add_argument("--n", type=_shape, required=True)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", required=True)
    c.add_argument("--format", default="npz", choices=["npz", "nifti", "png"])
    c.add_argument("--batch", type=_shape, default=256, help="samples per request (within the server's limit)")
    c.add_argument("--overwrite", action="store_true")
    c.set_defaults(func=commands.client_sample)

    s = sub.add_parser("info-model", help="parameter counts of the generator and critic")
    s.add_argument("--arch", choices=["dcgan", "wgan-gp", "wgan-gp-sn"], default="wgan-gp-sn")
    s.add_argument("--width", type=config_number("gan", "width"), default=1.0)
    s.add_argument("--patch-size", type=int, default=96)
    s.add_argument("--critic-layout", choices=["mirror", "official"], default="mirror")
    s.add_argument("--upsample", choices=["transposed", "resize"], default="transposed")
    s.add_argument("--label-head", choices=["shared", "image"], default="shared")
    s.set_defaults(func=commands.info_model)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"vesselgan {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            where = f": {exc.filename}" if exc.filename else ""
            print(f"vesselgan {args.command}: error: no space left on device{where}", file=sys.stderr)
            return 2
        if exc.errno is None or exc.filename is None:
            raise  # not a file-system refusal: a bug, keep the traceback
        # unwritable output folder, missing file: the user's environment
        print(f"vesselgan {args.command}: error: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vesselgan {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # TensorFlow, HDF5 and zip writers report a full disk in their own exception types
        if "No space left on device" in str(exc) or getattr(exc, "errno", None) == errno.ENOSPC:
            print(f"vesselgan {args.command}: error: no space left on device ({type(exc).__name__})", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    raise SystemExit(main())
