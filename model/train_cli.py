"""train-bokeh: the paper's multi-stage training (section 3.5 and 4.1), from EBB! pairs to
the checkpoint that export-tflite takes.

This module is the command line only: it checks the arguments, the weight files and the
data folder without importing torch, then hands over to `train.py`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..host import default_threads
from ..interrupt import run_cli
from ..usage import OneLineParser
from .config import RESIDUAL_DESIGNS
from .train_stages import PROG, STAGES

# Crops are at network resolution (the paper's 256x256 at stage 1, 512x512 at stage 2).
DEFAULT_CROP = {"1": 256, "2": 512, "3": 512, "cpu-track": 256}
FREEZE = ("auto", "none", "encoder", "features", "base")
# What --freeze auto means per stage: stage 3 trains "with most parameters fixed" (section 4.1).
FREEZE_AUTO = {"1": "none", "2": "none", "3": "features", "cpu-track": "base"}
VAL470 = 470
# Settings a resumed run may change; every other one defines the run and must stay.
RESUME_MAY_CHANGE = ("data", "val_dir", "vgg19_weights", "epochs", "max_steps", "val_every", "log_every",
                     "workers", "threads", "device")

EXAMPLES = """examples (the paper's schedule; EBB!'s Training/ folder as distributed):
  train-bokeh EBB/Training --stage 1 --out runs/s1 \\
      --encoder-weights resnext50_32x4d-7cdf4587.pth --vgg19-weights vgg19-dcbb9e9d.pth
  train-bokeh EBB/Training --stage 2 --init runs/s1/best.pth --out runs/s2 --vgg19-weights vgg19-dcbb9e9d.pth
  train-bokeh EBB/Training --stage 3 --init runs/s2/best.pth --out runs/s3 --vgg19-weights vgg19-dcbb9e9d.pth
  train-bokeh EBB/Training --stage cpu-track --init runs/s1/best.pth --out runs/cpu --vgg19-weights ...
  train-bokeh --resume --out runs/s1                  # continue from runs/s1/last.pth
  torchrun --nproc_per_node 4 $(which train-bokeh) EBB/Training --stage 1 --out runs/s1 ...

  export-tflite --track cpu --checkpoint runs/cpu/best.pth
  export-tflite --track gpu --checkpoint runs/s3/best.pth

validation: --val-count N holds out the N highest-numbered pairs (default 470, standing in
for the paper's Val470, whose split is not published), or --val-dir DIR in the same layout.
"""


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value
    return parse


def _float_at_least(low: float, strict: bool = False):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value != value or value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"expected a number {'>' if strict else '>='} {low:g}, got {text}")
        return value
    return parse


def _crop(text: str) -> int:
    value = _int_at_least(32)(text)
    if value % 32:
        raise argparse.ArgumentTypeError(f"expected a multiple of 32 (the network's stride), got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train the bokeh network on EBB! pairs: stage 1 (1/4 resolution, 6 defocus "
                    "layers), stage 2 (1/2), stage 3 (1/2, 1-channel defocus) or the CPU track's "
                    "residual module. Writes last.pth, best.pth, metrics.jsonl and run.json.")
    p.add_argument("data", nargs="?", metavar="DIR",
                   help="EBB!-layout folder: DIR/original/N.jpg and DIR/bokeh/N.jpg, paired by stem")
    p.add_argument("--stage", choices=STAGES, help="which stage to train (required unless --resume)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder for checkpoints and logs")
    p.add_argument("--resume", action="store_true",
                   help="continue RUN_DIR from its last.pth, with its run.json settings (steps carry on)")
    p.add_argument("--init", metavar="CKPT",
                   help="start from an earlier stage: stage 2 from stage 1; stage 3 from stage 1 or 2 "
                        "(the 6-way head is replaced by a 1-channel head); cpu-track from stage 1")
    w = p.add_argument_group("weights (no network access: ImageNet weights come from files)")
    w.add_argument("--backbone", choices=("resnext50", "tiny"),
                   help="resnext50 (the paper's; default) or tiny (a test backbone); with --init, "
                        "the checkpoint's")
    w.add_argument("--encoder-weights", metavar="FILE",
                   help="torchvision's ImageNet resnext50_32x4d file (resnext50_32x4d-7cdf4587.pth)")
    w.add_argument("--vgg19-weights", metavar="FILE",
                   help="torchvision's ImageNet vgg19 file (vgg19-dcbb9e9d.pth) for the perceptual loss")
    w.add_argument("--no-vgg", action="store_true",
                   help="train without the perceptual term (recorded in the checkpoint)")
    w.add_argument("--residual-design", choices=tuple(RESIDUAL_DESIGNS), metavar="DESIGN",
                   help="cpu-track: the residual module, low-res (XNNPACK-friendly; the default) or "
                        "full-res (the first design); default: the --init checkpoint's own, if it has one")
    w.add_argument("--freeze", choices=FREEZE, default="auto",
                   help="frozen parts: none; encoder (the ResNeXt); features (encoder, adapters and "
                        "fusion blocks: all but the defocus head and radiance); base (all but the "
                        "residual module, cpu-track only). auto (default): none for stages 1-2, "
                        "features for stage 3 (the paper's 'most parameters fixed'), base for cpu-track")
    d = p.add_argument_group("data")
    d.add_argument("--val-count", type=_int_at_least(0), metavar="N",
                   help=f"hold out the N highest-numbered pairs for validation (default: {VAL470}; "
                        "the paper's Val470 split is not published)")
    d.add_argument("--val-dir", metavar="DIR", help="validate on DIR (same layout) instead, e.g. AIM 2020's")
    d.add_argument("--crop", type=_crop, metavar="N",
                   help="training crop at network resolution, a multiple of 32 (default: 256 for "
                        "stage 1 and cpu-track, 512 for stages 2 and 3)")
    d.add_argument("--no-flip", action="store_true", help="no random left-right flips")
    d.add_argument("--workers", type=_int_at_least(0), default=min(8, default_threads()), metavar="N",
                   help="data-loading processes per training process (default: %(default)s)")
    d.add_argument("--threads", type=_int_at_least(1), metavar="N",
                   help="PyTorch threads per training process (default: this machine's cores shared "
                        "among torchrun's local processes; on a busy shared machine 1 can be much faster)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=_int_at_least(1), default=90, metavar="N",
                   help="epochs (default: %(default)s; the paper gives the decay cycle, not the length)")
    o.add_argument("--max-steps", type=_int_at_least(1), metavar="N", help="stop after N steps in all")
    o.add_argument("--batch-size", type=_int_at_least(1), default=8, metavar="N",
                   help="crops per step and process (default: %(default)s)")
    o.add_argument("--lr", type=_float_at_least(0, strict=True), default=1e-4, help="Adam's learning rate (default: 1e-4)")
    o.add_argument("--lr-step-size", type=_int_at_least(1), default=30, metavar="EPOCHS",
                   help="decay the learning rate every EPOCHS epochs (default: 30, the paper's cycle)")
    o.add_argument("--lr-gamma", type=_float_at_least(0, strict=True), default=0.1,
                   help="decay factor (default: 0.1; the paper does not give it)")
    o.add_argument("--seed", type=int, default=0, help="seed for weights, crops and order (default: 0)")
    o.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto (default): CUDA when available")
    o.add_argument("--amp", action="store_true",
                   help="mixed precision on CUDA (bfloat16 where supported, else float16 with loss "
                        "scaling); the renderer then runs in that precision")
    lw = p.add_argument_group("loss weights (Eq. 10; 0 switches a term off)")
    lw.add_argument("--l1-weight", type=_float_at_least(0), default=1.0, metavar="W", help="default: 1")
    lw.add_argument("--ssim-weight", type=_float_at_least(0), default=1.0, metavar="W", help="default: 1")
    lw.add_argument("--vgg-weight", type=_float_at_least(0), default=1.0, metavar="W", help="default: 1")
    lw.add_argument("--grad-weight", type=_float_at_least(0), default=0.1, metavar="W",
                    help="pyramid gradient loss on the defocus map (default: 0.1)")
    r = p.add_argument_group("reporting")
    r.add_argument("--val-every", type=_int_at_least(0), default=0, metavar="STEPS",
                   help="validate every STEPS steps (default: 0 = after each epoch), and at the end")
    r.add_argument("--log-every", type=_int_at_least(1), default=10, metavar="STEPS",
                   help="one training record in metrics.jsonl per STEPS steps (default: %(default)s)")
    return p


class UsageError(ValueError):
    """Bad arguments or inputs: one line on stderr, exit 2."""


def fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def explicit_options(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The destinations the command line sets (argparse fills only those still missing
    from the namespace with defaults, so pre-filled markers reveal the rest)."""
    marker = object()
    ns = argparse.Namespace(**{a.dest: marker for a in parser._actions if a.dest != "help"})
    parser.parse_args(argv, namespace=ns)
    return {k for k, v in vars(ns).items() if v is not marker}


def merge_resume(parser: argparse.ArgumentParser, args: argparse.Namespace, given: set[str]) -> argparse.Namespace:
    """--resume: the run's own settings from run.json, with the few that may change."""
    run_json = Path(args.out) / "run.json"
    if not (Path(args.out) / "last.pth").is_file():
        raise UsageError(f"nothing to resume in {args.out}: no last.pth")
    try:
        stored = json.loads(run_json.read_text())["args"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(f"cannot resume {args.out}: {run_json} is missing or unreadable") from None
    if "init" in given:
        raise UsageError("--init starts a run; --resume continues one from its last.pth")
    changed = sorted(k for k in given - {"resume", "out"} - set(RESUME_MAY_CHANGE)
                     if getattr(args, k) != stored.get(k))
    if changed:
        def flag(k: str) -> str:
            return "DIR" if k == "data" else "--" + k.replace("_", "-")
        raise UsageError(f"{', '.join(map(flag, changed))} cannot change on --resume (they define the run); "
                         f"only {', '.join(map(flag, RESUME_MAY_CHANGE))} can")
    # Defaults first: a run.json from an older version may lack a newer option.
    merged = {a.dest: a.default for a in parser._actions if a.dest != "help"}
    merged.update(stored)
    merged.update({k: getattr(args, k) for k in given if k in RESUME_MAY_CHANGE})
    merged.update(out=args.out, resume=True)
    return argparse.Namespace(**merged)


def check_args(args: argparse.Namespace, given: set[str]) -> argparse.Namespace:
    """Fill the stage defaults and refuse contradictions, before any data or torch."""
    if args.data is None:
        raise UsageError("the data folder DIR is required (EBB!'s Training/ folder)")
    if args.stage is None:
        raise UsageError("--stage is required: 1, 2, 3 or cpu-track")
    if args.crop is None:
        args.crop = DEFAULT_CROP[args.stage]
    if args.freeze == "auto":
        args.freeze = FREEZE_AUTO[args.stage]
    if args.residual_design and args.stage != "cpu-track":
        raise UsageError("--residual-design chooses the cpu track's residual module: cpu-track only")
    if args.freeze == "base" and args.stage != "cpu-track":
        raise UsageError("--freeze base leaves only the residual module to train: cpu-track only")
    if args.val_dir and "val_count" in given:
        raise UsageError("--val-count and --val-dir are alternatives: give one")
    if args.val_count is None:
        args.val_count = 0 if args.val_dir else VAL470
    if args.no_vgg and args.vgg19_weights:
        raise UsageError("--no-vgg and --vgg19-weights contradict each other")
    if args.no_vgg:
        args.vgg_weight = 0.0
    if args.vgg_weight and not args.vgg19_weights:
        raise UsageError("the perceptual loss needs VGG19's ImageNet weights and there is no network "
                         "here: pass --vgg19-weights FILE (torchvision's vgg19-dcbb9e9d.pth), or --no-vgg")
    if not args.resume:
        if args.stage == "cpu-track" and not args.init:
            raise UsageError("cpu-track trains the residual module on stage-1 weights: pass --init CKPT")
        if args.stage == "3" and not args.init and args.freeze != "none":
            raise UsageError(f"stage 3 fine-tunes an earlier stage with --freeze {args.freeze}: pass "
                             "--init CKPT (stage 1 or 2), or --freeze none to train from scratch")
        if args.init and args.encoder_weights:
            raise UsageError("--encoder-weights starts the encoder from ImageNet; --init already sets it")
    if args.amp and args.device == "cpu":
        raise UsageError("--amp needs CUDA (mixed precision on this CPU would only be slower)")
    for flag, path in (("--init", args.init), ("--encoder-weights", args.encoder_weights),
                       ("--vgg19-weights", args.vgg19_weights)):
        if path and not (args.resume and flag != "--vgg19-weights") and not os.path.isfile(path):
            raise UsageError(f"{flag}: no such file: {path}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    if not args.resume and (out / "last.pth").exists():
        raise UsageError(f"{out} already holds a run (last.pth): continue it with --resume, "
                         f"or choose another --out")
    return args


def load_data(args: argparse.Namespace, say) -> dict:
    """Scan the folders (torch-free) and split; lists what was skipped. UsageError if unusable."""
    from .ebb import EbbError, scan_ebb, split_val

    try:
        scan = scan_ebb(args.data)
        skipped = list(scan.skipped)
        if args.val_dir:
            val_scan = scan_ebb(args.val_dir)
            skipped += val_scan.skipped
            train, val = scan.pairs, val_scan.pairs
            split = f"--val-dir {args.val_dir}"
        else:
            train, val = split_val(scan.pairs, args.val_count) if scan.pairs else ([], [])
            split = (f"the {len(val)} highest-numbered pairs of {args.data} (the paper's Val470 split "
                     f"is not published)" if val else "none (--val-count 0)")
    except EbbError as exc:
        raise UsageError(str(exc)) from None
    for i, (path, why) in enumerate(skipped):
        if i == 20:
            say(f"{PROG}: ... and {len(skipped) - 20} more skipped (all listed in run.json)")
            break
        say(f"{PROG}: skipping {path}: {why}")
    if not train:
        raise UsageError(f"no usable training pairs in {args.data} ({len(skipped)} file(s) skipped)")
    if args.val_dir and not val:
        raise UsageError(f"no usable validation pairs in {args.val_dir} ({len(skipped)} file(s) skipped)")
    return {"train": train, "val": val, "split": split,
            "skipped": [[str(path), why] for path, why in skipped]}


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    given = explicit_options(parser, argv)
    if args.data is None:
        given.discard("data")   # an optional positional is always "set", to its default
    rank0 = int(os.environ.get("RANK", "0")) == 0     # torchrun's; only rank 0 speaks

    def say(line: str) -> None:
        if rank0:
            print(line, file=sys.stderr, flush=True)

    try:
        if args.resume:
            args = merge_resume(parser, args, given)
        args = check_args(args, given)
        data = load_data(args, say)
    except UsageError as exc:
        return fail(f"{exc} (see {PROG} --help)") if rank0 else 2
    from .train import TrainError, train
    try:
        return train(args, data, command=[PROG, *argv], say=say)
    except TrainError as exc:
        return fail(str(exc)) if rank0 else 2


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
