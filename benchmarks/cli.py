"""bench-runtime: how fast are the exported models, and where does the time go."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..contract import PRECISIONS, parse_size
from ..host import default_threads
from ..interrupt import run_cli
from ..usage import OneLineParser
from .backends import GpuUnavailable, find_gpu_adapter
from .inputs import image_files
from .large_photo import LARGE_PHOTO_SIZE
from .peak import GEMM_SIZE
from .report import sections, to_text, write_json, write_markdown, write_plot
from .suite import EXTRA_PRECISIONS, FULL_SIZE, SWEEP_SIZES, BenchError, Settings, Suite, own_precision
from .targets import LOAD_LIMIT_PER_CORE, withhold_ratios
from .timing import Protocol

PROG = "bench-runtime"
EXAMPLES = f"""\
examples:
  {PROG} --device cpu                      # cpu and gpu tracks, all backends, 1 and all cores
  {PROG} --track render                    # the depth-guided renderer (opt-in, not in --track all)
  {PROG} --track portrait                  # the portrait step, its split, and the full-resolution pipeline
  {PROG} --track all,portrait              # several tracks in one run and one report
  {PROG} --track cpu --precision float32,int8   # the int8 export beside the float32 one
  {PROG} --track cpu --runs 5 --min-secs 1 --json bench.json --markdown bench.md
  {PROG} --images ~/ebb/val --plot bench.png   # time on real photos, draw a chart
  {PROG} --sweep --track gpu                # 256x384, 512x768 and 1024x1536
  {PROG} --device gpu --track gpu           # LiteRT's GPU accelerator on a Vulkan device
  {PROG} --track gpu --profile              # and where LiteRT spends its time, per op type
  {PROG} --track gpu --large-photo          # and bokeh-render's peak RSS on a 48 MP JPEG

Models come from --artifacts (bokeh_<track>_<H>x<W>.tflite and the .onnx beside it) and
are exported there first if missing (a few minutes). Exit codes: 0 done, 1 a step failed,
2 bad usage or no Vulkan adapter for --device gpu.

--device gpu times the `litert-gpu` backend, LiteRT's GPU accelerator, GPU-only, under the
same protocol, on the Vulkan adapter it finds: your GPU's driver, else SwiftShader
(apt-get install chromium-common libvulkan1). The adapter is printed and kept in the JSON;
SwiftShader is a software device on this CPU, and the report says its times are not a phone's.

The render track takes disparity, focus and aperture beside the image. On the generated
scene they are export-tflite's parity inputs (a disparity ramp, focus 0.3, aperture 24);
with --images, whose photos have no depth, each photo gets a generated disparity ramp
(0 at the left edge to 1 at the right), focus 0.5 and aperture 24. The paper has no
render-track row and no target applies to it: the report says so.

The portrait track times bokeh-render --portrait's whole step on LiteRT: the segmenter
(bokeh_portrait_segmenter.tflite, from the local cache), person -> disparity, and the
render-track model; the split gives each part's median. ONNX Runtime and PyTorch have no
segmenter and are not timed; no paper row and no target apply. It is exported with
export-tflite --track portrait if missing.

--precision int8 adds LiteRT XNNPACK rows (low memory, persistent) on each track's int8
export (bokeh_<track>_<H>x<W>_int8.tflite, exported if missing), and beside them an ONNX
Runtime int8 row: that export's ONNX graph through ONNX Runtime's static QDQ quantizer in
its fastest x86 configuration, U8S8 (convolutions, uint8 activations per tensor, int8
weights per channel), calibrated on --calibration DIR (default: a built-in set of 32 crops
of real photos from the scikit-image and matplotlib wheels, none of the int8 gate's). The
report gives int8/float32 median ratios, LiteRT int8 / ORT int8 and the int8 targets.
PyTorch stays float32.

The report gives the 1-minute load average before and after the timed rows and the core
count. Where the load of others (the larger of before, and after less the bench's own
threads) is above {LOAD_LIMIT_PER_CORE:g} per core, it prints the rows but states no ratio between
runtimes (TFLite/ORT, TFLite/PyTorch, LiteRT/ORT) and no target on one: contention slows
runtimes unequally. Rerun on an idle machine, once the exports exist.
"""


class UsageError(Exception):
    pass


def size_arg(text: str) -> tuple[int, int]:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def sizes_arg(text: str) -> tuple[tuple[int, int], ...]:
    return tuple(size_arg(s) for s in text.split(",") if s)


def threads_arg(text: str) -> tuple[int, ...]:
    try:
        counts = sorted({int(v) for v in text.split(",") if v})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected thread counts such as 1,2, got {text!r}") from None
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"thread counts must be >= 1, got {text!r}")
    return tuple(counts)


def precisions_arg(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(v for v in text.split(",") if v))
    bad = [v for v in names if v not in PRECISIONS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"expected precisions from {','.join(PRECISIONS)}, got {text!r}")
    return names


TRACK_CHOICES = ("cpu", "gpu", "render", "portrait")


def tracks_arg(text: str) -> tuple[str, ...]:
    """'cpu,portrait' -> ('cpu', 'portrait'); 'all' stands for the paper's two, cpu and gpu."""
    names = tuple(dict.fromkeys(t for v in text.split(",") if v for t in (("cpu", "gpu") if v == "all" else (v,))))
    bad = [v for v in names if v not in TRACK_CHOICES]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"expected tracks from {','.join(TRACK_CHOICES)} or all, got {text!r}")
    return names


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Time the exported bokeh models (LiteRT with XNNPACK on and off, "
                      "ONNX Runtime, PyTorch) with TFLite benchmark_model's protocol, side by side, and show "
                      "where the time goes.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                   help="cpu: everything below; gpu: LiteRT's GPU accelerator (litert-gpu) only "
                        "(default: cpu)")
    p.add_argument("--track", type=tracks_arg, metavar="LIST",
                   help="which tracks, comma-separated, e.g. all,portrait; all = cpu and gpu, the paper's "
                        "tracks; render (the depth-guided renderer) and portrait (segmenter + portrait "
                        "model) are opt-in (default: all; with --device gpu, gpu: the cpu track is not for "
                        "the GPU accelerator)")
    p.add_argument("--precision", type=precisions_arg, default=(), metavar="LIST",
                   help="precisions to export and time, e.g. float16,int8: a track's own is always "
                        "timed; each other precision export-tflite makes of a track (int8: cpu and gpu "
                        "tracks) adds LiteRT XNNPACK rows on that export (default: each track's own only)")
    p.add_argument("--calibration", type=Path, metavar="DIR",
                   help="with --precision int8: the photos (at least 32) ONNX Runtime's static int8 is "
                        "calibrated on (default: the int8 export's own if static, else a built-in set)")
    p.add_argument("--artifacts", type=Path, default=None, help="exported models (default: ./artifacts)")
    p.add_argument("--checkpoint", help="weights to export with and to load into the PyTorch backend")
    p.add_argument("--images", type=Path, help="time on the first images of DIR instead of a generated scene")
    p.add_argument("--runs", type=int, default=20, help="at least this many timed runs (default: 20)")
    p.add_argument("--min-secs", type=float, default=1.0, help="and at least this many seconds (default: 1)")
    p.add_argument("--warmup-secs", type=float, default=0.5,
                   help="warm-up: at least 1 run and this many seconds (default: 0.5)")
    p.add_argument("--max-secs", type=float, default=150.0,
                   help="stop each loop after this many seconds once 1 run is done, even short of "
                        "--runs, as benchmark_model does; the results say so (default: 150)")
    p.add_argument("--threads", type=threads_arg, help="thread counts, e.g. 1,2 (default: 1 and all cores)")
    p.add_argument("--sweep", action="store_true", help="also time 256x384, 512x768 and 1024x1536")
    p.add_argument("--profile", action="store_true",
                   help="after the rows, profile each LiteRT export per op (LiteRT's op profiler, "
                        "XNNPACK, all cores) and print the costliest op types")
    p.add_argument("--large-photo", nargs="?", const=LARGE_PHOTO_SIZE, type=size_arg, metavar="HxW",
                   help="also run bokeh-render on one generated JPEG of HxW (default 6000x8000, 48 MP) "
                        "through the gpu track, in a fresh process, and report its peak RSS")
    p.add_argument("--json", type=Path, help="write the full results to FILE")
    p.add_argument("--markdown", type=Path, help="write a Markdown report to FILE")
    p.add_argument("--plot", type=Path, help="write a latency and stage chart to FILE.png")
    p.add_argument("--native", type=Path, metavar="BUILD/bokeh-native",
                   help="also time bokeh-native beside bokeh-render, end to end (benchmarks/native.py)")
    p.add_argument("--web", action="store_true",
                   help="also time the web page in headless Chromium (wasm, and WebGPU where it runs) beside "
                        "bokeh-render on the gpu track's model (benchmarks/web.py)")
    adv = p.add_argument_group("advanced (tests and experiments; results are not the AIM protocol)")
    adv.add_argument("--size", type=size_arg, default=FULL_SIZE, help="input size HxW (default: 1024x1536)")
    adv.add_argument("--tiny", action="store_true",
                     help="tiny test backbone; needs its own --artifacts folder")
    adv.add_argument("--sweep-sizes", type=sizes_arg, help="sizes for --sweep, e.g. 256x384,512x768")
    adv.add_argument("--gemm-size", type=int, default=GEMM_SIZE, metavar="N",
                     help=f"GEMM peak product size (default: {GEMM_SIZE}; smaller ones do not reach the peak)")
    return p


def check_output(path: Path | None, flag: str, suffix: str | None = None) -> None:
    if path is None:
        return
    if suffix and path.suffix.lower() != suffix:
        raise UsageError(f"{flag} {path}: expected a {suffix} file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"{flag} {path}: folder {parent} does not exist or is not writable")


def settings_from(args: argparse.Namespace, argv: list[str]) -> Settings:
    if args.runs < 1:
        raise UsageError(f"--runs must be >= 1, got {args.runs}")
    if args.min_secs < 0 or args.warmup_secs < 0:
        raise UsageError("--min-secs and --warmup-secs must be >= 0")
    if not args.max_secs > 0:
        raise UsageError(f"--max-secs must be > 0, got {args.max_secs}")
    if args.tiny and args.artifacts is None:
        raise UsageError("--tiny needs its own --artifacts folder (tiny models share the real models' file names)")
    if args.gemm_size < 64:
        raise UsageError(f"--gemm-size must be >= 64, got {args.gemm_size}")
    if args.sweep_sizes and not args.sweep:
        raise UsageError("--sweep-sizes needs --sweep")
    check_output(args.json, "--json")
    check_output(args.markdown, "--markdown")
    check_output(args.plot, "--plot", ".png")
    if args.images is not None:
        try:
            image_files(args.images)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    tracks = args.track or (("gpu",) if args.device == "gpu" else ("cpu", "gpu"))
    if args.device == "gpu" and "cpu" in tracks:
        raise UsageError("--device gpu: the cpu track is not for LiteRT's GPU accelerator (docs/contract.md, "
                         "F9: every front end refuses it there); the gpu track is the model for GPUs (--track gpu)")
    for precision in args.precision:
        if not any(precision == own_precision(t) or precision in EXTRA_PRECISIONS.get(t, ()) for t in tracks):
            own = ", ".join(f"{t} {own_precision(t)}" for t in tracks)
            raise UsageError(f"--precision {precision}: no such export of the {' or '.join(tracks)} track "
                             f"(own: {own}; int8: cpu and gpu tracks only; portrait: its own only)")
        if args.device == "gpu" and any(precision in EXTRA_PRECISIONS.get(t, ()) for t in tracks):
            raise UsageError(f"--precision {precision} is timed on the CPU (LiteRT XNNPACK); --device gpu "
                             "times the GPU accelerator on each track's own export")
    if args.calibration is not None:
        if "int8" not in args.precision:
            raise UsageError("--calibration goes with --precision ...,int8 (it calibrates ONNX Runtime's int8)")
        from ..export.calibration import photo_files     # no torch: a short folder is refused at once
        try:
            photo_files(args.calibration)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.large_photo is not None and ("gpu" not in tracks or args.device != "cpu"):
        raise UsageError("--large-photo runs the gpu track's model on the CPU: use it with --track gpu "
                         "or all, and --device cpu")
    sweep = (args.sweep_sizes or SWEEP_SIZES) if args.sweep else ()
    if args.device == "gpu":
        sweep = ()
    threads = args.threads or ((default_threads(),) if args.device == "gpu" else ())
    return Settings(device=args.device, tracks=tracks, size=args.size,
                    artifacts=args.artifacts or Path("artifacts"), checkpoint=args.checkpoint,
                    images=args.images, threads=threads, sweep_sizes=sweep, tiny=args.tiny,
                    gemm_size=args.gemm_size, precisions=args.precision,
                    profile=args.profile, large_photo=args.large_photo, calibration=args.calibration,
                    protocol=Protocol(runs=args.runs, min_secs=args.min_secs, warmup_secs=args.warmup_secs,
                                      max_secs=args.max_secs),
                    command=[PROG, *argv])


def check_sizes(settings: Settings) -> None:
    from ..export.tracks import check_size, get_track
    for track in settings.tracks:
        for size in (settings.size, *settings.sweep_sizes):
            try:
                check_size(get_track("render" if track == "portrait" else track), size)
            except ValueError as exc:
                raise UsageError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        settings = settings_from(args, argv)
        if settings.device == "gpu":
            settings.adapter = find_gpu_adapter()
        check_sizes(settings)
        if args.web:
            from ..export.webgpu_check import missing_browser
            if (why := missing_browser()):
                raise UsageError(f"--web needs the browser: {why}")
        if args.native is not None:      # never time a binary under emulation (qemu-user)
            from .native import emulated
            if (why := emulated(args.native)):
                raise UsageError(why)
    except (UsageError, GpuUnavailable) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    try:
        results = Suite(settings, progress=lambda m: print(m, file=sys.stderr, flush=True)).run()
        if args.native is not None:      # its rows become a section of every report below
            from .native import add_native
            add_native(results, args.native, settings, lambda m: print(m, file=sys.stderr, flush=True))
        if args.web:
            from .web import add_web
            add_web(results, settings, lambda m: print(m, file=sys.stderr, flush=True))
        withhold_ratios(results)         # on a loaded machine, no report states a ratio between runtimes
        print(to_text(sections(results)))
        for path, write in ((args.json, write_json), (args.markdown, write_markdown), (args.plot, write_plot)):
            if path is not None:
                write(path, results)
                print(f"wrote {path}", file=sys.stderr)
    except BenchError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
