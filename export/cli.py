"""export-tflite: the command users type to get a phone-ready .tflite."""
from __future__ import annotations

import argparse
import json
import os
import sys

from ..contract import DEFAULT_SIZE, OUTPUT_SETS, PRECISIONS, RENDER_SCALES, parse_size
from ..interrupt import run_cli
from ..model.config import BackboneConfig
from ..usage import OneLineParser
from .plan import ExportPlan           # no torch: the options are checked at once
from .tracks import CHOICES

EXAMPLES = """examples:
  export-tflite --track gpu                       # artifacts/bokeh_gpu_1024x1536.tflite
  export-tflite --track all --input-size 512x768 -o out/
  export-tflite --track cpu --checkpoint stage1.pth --json
  export-tflite --track cpu --precision int8      # artifacts/bokeh_cpu_1024x1536_int8.tflite
  export-tflite --track gpu --outputs bokeh       # artifacts/bokeh_gpu_1024x1536_bokeh.tflite: one output
  export-tflite --check-gpu some_model.tflite     # our GPU-delegate rules + LiteRT's GPU accelerator
  export-tflite --track gpu --require-gpu         # fail (exit 2) if the accelerator cannot verify it
  export-tflite --track render --render-scale 2   # artifacts/bokeh_render_1024x1536_half.tflite
  export-tflite --track portrait --input-size 512x768   # the segmenter + the portrait model

Every .tflite carries the standard TFLite Model Metadata (name, version, licence, each
tensor's range and normalisation; what Android Studio's ML Model Binding reads) and its
sidecar inside as an associated file, so bokeh-render also takes it alone
(bokeh-render --describe MODEL.tflite shows both). --outputs bokeh exports the bokeh output
alone, at the model size: one image in, one image out, which ML Model Binding can wrap;
without the defocus map there is no full-resolution Eq. 9 blend (bokeh-render samples that
bokeh up, so in-focus pixels keep the model size's resolution).

Every float16 export is compiled GPU-only on LiteRT's GPU accelerator and run on the
parity inputs when a Vulkan adapter exists (a GPU driver, or SwiftShader: apt-get install
chromium-common libvulkan1); its sidecar records the result as `gpu_accelerator`.
"""


def size_arg(text: str) -> tuple[int, int]:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="export-tflite", epilog=EXAMPLES,
                      formatter_class=argparse.RawDescriptionHelpFormatter,
                      description="Export the bokeh model: PyTorch -> ONNX -> TFLite, "
                                  "parity-gated against PyTorch.")
    p.add_argument("--track", choices=tuple(CHOICES), default="gpu",
                   help="; ".join(f"{name}: {c.help}" for name, c in CHOICES.items()) + " (default: gpu)")
    p.add_argument("--segmenter", metavar="FILE.tflite",
                   help="portrait: MediaPipe's selfie_segmentation.tflite (default: taken from the "
                        "mediapipe wheel on PyPI once, then cached in $BOKEHLITE_HOME)")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="override the track's precision (float16 tracks must pass the GPU check; "
                        "int8, cpu and gpu tracks, is gated on real photos); "
                        "the file name then says it, e.g. bokeh_cpu_1024x1536_float16.tflite")
    p.add_argument("--calibration", metavar="DIR",
                   help="with --precision int8: static int8 (int8 activations in the convolutions far "
                        "from the softmax, dynamic-range weights in the rest), calibrated on the photos "
                        "in DIR (at least 32, fitted as bokeh-render fits them); without it, int8 is "
                        "dynamic range (int8 weights only)")
    p.add_argument("--outputs", choices=tuple(OUTPUT_SETS), default="all",
                   help="all: every output of the track (default); bokeh: the bokeh alone, at the model "
                        "size (file name ends _bokeh; no full-resolution Eq. 9 blend, see below)")
    p.add_argument("--render-scale", type=int, choices=RENDER_SCALES, default=1,
                   help="render track: 2 renders the blur layers over 1 px at 1/2 or 1/4 of the model "
                        "size and blends Eq. 9 at the model size (file name ends _half; the portrait model "
                        "always does); 1: every layer at the model size, the reference (default)")
    p.add_argument("--input-size", type=size_arg, default=DEFAULT_SIZE, metavar="HxW",
                   help=f"fixed input size (default: {DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}, "
                        "the EBB!/AIM 2020 resolution)")
    p.add_argument("--checkpoint", help="trained weights (ours, or the authors' BokehNet2 state dict); "
                                        "without it, seeded untrained weights are used")
    p.add_argument("-o", "--out", default="artifacts", help="output folder (default: ./artifacts)")
    p.add_argument("--json", action="store_true", help="print the report(s) as JSON on stdout")
    p.add_argument("--check-gpu", metavar="FILE.tflite",
                   help="only check FILE.tflite: against the TFLite GPU delegate's rules, and by "
                        "compiling and running it GPU-only on LiteRT's GPU accelerator")
    p.add_argument("--require-gpu", action="store_true",
                   help="exit 2 instead of warning when there is no Vulkan adapter to verify a "
                        "float16 export (or --check-gpu FILE) on LiteRT's GPU accelerator")
    p.add_argument("--tiny", action="store_true",
                   help="a tiny backbone, for tests and CI: the pipeline is real, the model is not")
    return p


def fail(message: str) -> int:
    print(f"export-tflite: error: {message}", file=sys.stderr)
    return 2


def warn(message: str) -> None:
    print(f"export-tflite: warning: {message}", file=sys.stderr)


def check_gpu(path: str, as_json: bool, require_gpu: bool = False) -> int:
    """Both opinions: our reading of the GPU delegate's rules, and LiteRT's GPU accelerator."""
    from .accelerator import check_file
    from .gpu_check import check_gpu_compatibility, format_problems
    from .tflite_inspect import ModelFileError
    if not os.path.isfile(path):
        return fail(f"no such file: {path}")
    try:
        result = check_gpu_compatibility(path)
    except ModelFileError as exc:
        return fail(str(exc))
    on_gpu = check_file(path)
    if on_gpu["compatible"] is None and require_gpu:
        return fail(on_gpu["reason"])
    if as_json:
        print(json.dumps({**result, "gpu_accelerator": on_gpu}, indent=2))
    else:
        if result["compatible"]:
            print(f"{path}: all {result['ops']} ops are accepted by the TFLite GPU delegate")
        else:
            print(f"{path}: {len(result['problems'])} problem(s) for the TFLite GPU delegate:\n"
                  + format_problems(result))
        if on_gpu["compatible"]:
            print(f"{path}: LiteRT's GPU accelerator runs it GPU-only on {on_gpu['adapter']}, "
                  "in agreement with its CPU")
        elif on_gpu["compatible"] is False:
            print(f"{path}: {on_gpu['reason']}")
    if on_gpu["compatible"] is None:
        warn(f"not checked on LiteRT's GPU accelerator: {on_gpu['reason']}")
    return 0 if result["compatible"] and on_gpu["compatible"] is not False else 1


def main(argv: list[str] | None = None) -> int:
    return run_cli("export-tflite", _main, argv)


def _main(argv: list[str] | None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    if args.check_gpu:
        return check_gpu(args.check_gpu, args.json, args.require_gpu)

    if args.checkpoint and not os.path.isfile(args.checkpoint):
        return fail(f"checkpoint not found: {args.checkpoint}")
    if args.segmenter and args.track != "portrait":
        return fail("--segmenter goes with --track portrait")
    outputs = OUTPUT_SETS[args.outputs]
    try:
        plans = [ExportPlan.build(name, args.input_size, precision=args.precision, outputs=outputs,
                                  render_scale=args.render_scale, calibration=args.calibration,
                                  checkpoint=args.checkpoint, require_gpu=args.require_gpu,
                                  backbone=BackboneConfig.tiny() if args.tiny else None)
                 for name in CHOICES[args.track].exports]
    except ValueError as exc:       # a usage error: the flags do not go together
        return fail(f"{exc} (see export-tflite --help)")
    if args.require_gpu and any(plan.for_gpu for plan in plans):
        from ..runtime.errors import BackendError
        from ..runtime.gpu_adapter import find_adapter
        try:
            find_adapter()              # no adapter: say so now, not after minutes of export
        except BackendError as exc:
            return fail(str(exc))

    from ..model import CheckpointError
    from .pipeline import ExportError, GpuRequiredError, export_track
    from .portrait import export_portrait
    from .quiet import native_stderr_to_devnull
    if not args.checkpoint and any(plan.track.preset is not None for plan in plans):   # learned weights
        print("export-tflite: warning: no --checkpoint given; exporting seeded UNTRAINED weights "
              "(the pipeline and timings are real, the bokeh is not)", file=sys.stderr)
    reports = []

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    for plan in plans:
        track = plan.track.name
        try:
            with native_stderr_to_devnull():
                if track == "portrait":
                    reports.append(export_portrait(plan, args.out, args.segmenter, progress))
                else:
                    reports.append(export_track(plan, args.out, progress))
        except (ValueError, CheckpointError, GpuRequiredError) as exc:
            return fail(str(exc))
        except ExportError as exc:
            print(f"export-tflite: {track} track failed: {exc}", file=sys.stderr)
            return 1
        on_gpu = reports[-1]["gpu_accelerator"]
        if reports[-1]["precision"] == "float16" and not on_gpu["verified"]:
            warn(f"{track} track not verified on LiteRT's GPU accelerator: {on_gpu['reason']}")
    if args.json:
        print(json.dumps(reports if len(reports) > 1 else reports[0], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
