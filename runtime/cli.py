"""bokeh-render: render bokeh on photos with an exported .tflite model.

Image-only models (cpu, gpu tracks) render from the photo alone; a depth-guided model
(render track) also takes the photo's disparity map (--depth), a focus and an aperture;
a portrait pipeline (--portrait) finds the person itself. Each is a mode (modes.py), picked
from the flags and opened once (`build_mode`); this module keeps the files, the names, the
progress and the report.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The help text quotes the contract's defaults; a render uses its model's own (its sidecar's "host").
from ..contract import (CENTRE_BOX, DEFAULT_APERTURE, DEFAULT_SIZE, FOCUS_WINDOW, MAX_BLUR_RADIUS, SEGMENTER_FILE,
                        artifact_stem)
from ..files import FolderNotWritable, ensure_writable_dir
from ..host import peak_rss_mb
from ..interrupt import run_cli
from ..usage import OneLineParser
from .backends import REGISTRY
from .errors import DepthError, OutputError, RuntimeInputError
from .header import is_output, note_output
from .photo import DEFAULT_MAX_PIXELS, Photo, encode_photo, format_for_path, read_bytes, read_photo, write_all
from .progress import Progress

PROG = "bokeh-render"
DEFAULT_MODEL = Path("artifacts") / f"{artifact_stem('gpu', DEFAULT_SIZE)}.tflite"
DEFAULT_RENDER_MODEL = Path("artifacts") / f"{artifact_stem('render', DEFAULT_SIZE)}.tflite"    # with --depth
DEFAULT_MODELS = Path("artifacts")                                   # with --portrait
EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2

EXAMPLES = f"""\
examples:
  {PROG} photo.jpg -o out/
  {PROG} photos/ -o photos/ --suffix _bokeh      # write beside the inputs
  {PROG} holidays/ portrait.png -m artifacts/{artifact_stem('cpu', DEFAULT_SIZE)}.tflite -o out/
  {PROG} scans/ -o out/ --backend litert --threads 4 --no-xnnpack --json
  {PROG} photo.jpg -o out/ --backend litert-gpu     # LiteRT's GPU accelerator (Vulkan)
  {PROG} photo.png --depth disparity.png --focus 610,380 --aperture 40 -o out/
  {PROG} photo.png --depth depth.npy --depth-is-depth --focus-disparity 0.7 -o out/
  {PROG} portraits/ --portrait --aperture 30 --save-depth -o out/
  {PROG} --describe artifacts/{artifact_stem('gpu', DEFAULT_SIZE)}.tflite   # its metadata and contract

INPUT may be files or folders (searched recursively for .jpg .png .tif .webp .bmp;
the folder layout is kept under OUTDIR). Outputs keep the input's name and format, plus
--suffix if given; with a suffix, OUTDIR may be the input folder (`-o photos/ --suffix _bokeh`).
A file already there is replaced only if it is an earlier output of {PROG}, unchanged since
(each output carries a note saying so); any other file in the way stops the run.
Without -m the default GPU-track model {DEFAULT_MODEL} is used; make it with
`export-tflite --track gpu`. A model needs no sidecar beside it: export-tflite embeds the
contract in every .tflite (TFLite Model Metadata); a sidecar beside it is preferred, and its
sha256 must match. A bokeh-only model (`export-tflite --outputs bokeh`) is rendered by
sampling its bokeh up to the photo: no full-resolution Eq. 9 blend, so in-focus pixels keep
the model size's resolution.

depth-guided rendering: a render-track model (`export-tflite --track render`; without
-m, {DEFAULT_RENDER_MODEL}) takes the disparity map of one photo
with --depth, larger = nearer: a grey 8- or 16-bit image (PNG) or a .npy array, of any
size. It is resized to the photo, then letterboxed into the model with it. Its values
are normalised by min-max over the valid pixels (nearest = 1, farthest = 0). NaN or
infinite pixels are filled from the nearest valid pixel, and a map whose aspect ratio
differs from the photo's by more than 1% is stretched to fit; one warning line says so.
--depth-is-depth takes distances instead (1 / depth where depth > 0, then normalised).
The focal plane is the median disparity of the {FOCUS_WINDOW}x{FOCUS_WINDOW} photo pixels around --focus X,Y
(X a column, Y a row, from 0,0 at the top left of the photo as displayed), or
--focus-disparity V, or by default the median over the centred box {CENTRE_BOX:.0%} of the
photo's width and height. --aperture is in pixels of the photo; it is scaled with the
photo into the model, so a photo looks the same at any size. The model caps the blur
radius at {MAX_BLUR_RADIUS} of its own pixels.

portrait mode: --portrait runs the person segmenter and the portrait model of the pipeline
in --models DIR (default {DEFAULT_MODELS}; `export-tflite --track portrait`): the model refines
the person mask to the photo's edges, derives a depth (person in front, a receding ground
plane behind), focuses on the person and renders the blur at reduced resolution; Eq. 9 blends
it with the photo at its own resolution. A photo with no person is written unchanged, with
one warning.

exit codes: 0 all rendered, 2 bad usage or input (any file failed), 1 internal error.
"""


def _point(text: str) -> tuple[int, int]:
    parts = text.split(",")
    try:
        x, y = (int(p) for p in parts)
    except ValueError:
        x = y = -1
    if len(parts) != 2 or x < 0 or y < 0:
        raise argparse.ArgumentTypeError(f"expected X,Y pixel coordinates (column,row), got {text!r}")
    return x, y


def _number(low: float, high: float):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (math.isfinite(value) and low <= value <= high):
            what = f"from {low:g} to {high:g}" if math.isfinite(high) else f"of at least {low:g}"
            raise argparse.ArgumentTypeError(f"expected a finite number {what}, got {text!r}")
        return value
    return parse


def _suffix(text: str) -> str:
    if not text or "/" in text or "\\" in text or text in (".", ".."):
        raise argparse.ArgumentTypeError(f"expected a file-name suffix such as _bokeh, got {text!r}")
    return text


def _positive_int(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Render learned bokeh on photos with an exported TFLite model.",
                      epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="photo files or folders")
    p.add_argument("-o", "--out", type=Path, metavar="OUTDIR",
                   help="output folder (created if missing; required to render); inputs, and files that "
                        f"{PROG} did not write, are never overwritten")
    p.add_argument("--describe", type=Path, metavar="MODEL.tflite",
                   help="print what the model says it is and exit: its TFLite Model Metadata (name, "
                        "version, licence, tensors with shapes, ranges and normalisation) and its "
                        "contract (sidecar, or the copy embedded in the model); with --json, as data")
    p.add_argument("--suffix", type=_suffix, metavar="TEXT",
                   help="add TEXT to each output's name (photo.jpg -> photo_bokeh.jpg with --suffix "
                        "_bokeh); makes -o the input folder safe")
    p.add_argument("-m", "--model", type=Path, metavar="MODEL.tflite",
                   help=f"exported model, with its sidecar .json or alone (the contract is embedded "
                        f"in it; default: {DEFAULT_MODEL})")
    p.add_argument("--backend", choices=("auto", *REGISTRY), default="auto",
                   help="how to run the model (default: auto = the first of litert (LiteRT's "
                        "CompiledModel, XNNPACK in low memory), litert-interpreter, tflite_runtime, "
                        "tensorflow that works; litert-gpu: LiteRT's GPU accelerator, GPU-only, on a "
                        "Vulkan driver or SwiftShader, for a model the export verified there: not the "
                        "cpu track)")
    p.add_argument("--threads", type=_positive_int, metavar="N",
                   help="interpreter threads (default: all cores)")
    p.add_argument("--no-xnnpack", dest="xnnpack", action="store_false",
                   help="run without the XNNPACK CPU delegate")
    p.add_argument("--max-pixels", type=_positive_int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help="refuse photos with more pixels than this (default: %(default)d)")
    p.add_argument("--json", action="store_true", help="print a machine-readable report on stdout")
    d = p.add_argument_group("depth-guided models (render track; see below)")
    d.add_argument("--depth", type=Path, metavar="FILE",
                   help="disparity map of the (single) photo: grey 8/16-bit PNG or .npy, larger = nearer")
    d.add_argument("--depth-is-depth", action="store_true",
                   help="the --depth map holds distances (larger = farther): use 1 / depth")
    focus = d.add_mutually_exclusive_group()
    focus.add_argument("--focus", type=_point, metavar="X,Y",
                       help=f"focus where the photo's column X, row Y is "
                            f"(median of {FOCUS_WINDOW}x{FOCUS_WINDOW} px)")
    focus.add_argument("--focus-disparity", type=_number(0.0, 1.0), metavar="V",
                       help="focus on normalised disparity V in [0, 1] "
                            f"(default: the median over the middle {CENTRE_BOX:.0%}% of the photo)")
    d.add_argument("--aperture", type=_number(0.0, float("inf")), metavar="A",
                   help="blur radius in photo pixels per unit of |disparity - focus| "
                        f"(default: {DEFAULT_APERTURE:g}); also for --portrait")
    q = p.add_argument_group("portrait mode (a photo alone; see below)")
    q.add_argument("--portrait", action="store_true",
                   help="find the person, keep them sharp and blur the rest (a person segmenter + the "
                        "portrait model: export-tflite --track portrait)")
    q.add_argument("--models", type=Path, metavar="DIR",
                   help=f"folder of the portrait pipeline (default: {DEFAULT_MODELS})")
    q.add_argument("--save-depth", action="store_true",
                   help="also write the derived disparity beside each output, as <name>_depth.png "
                        "(16-bit; edit it and pass it back with --depth)")
    return p


@dataclass
class Job:
    """One photo to render and where its files go, as collect_jobs plans them."""

    input: Path
    output: Path | None = None
    depth_output: Path | None = None      # with --save-depth: where its depth map would go
    error: str | None = None              # known before rendering (an output that clashes)


@dataclass(frozen=True)
class Rendered:
    """What rendering one job gave, for its line and its entry in the --json report."""

    size: tuple[int, int]
    seconds: float
    warning: str | None = None
    focus: float | None = None
    depth_output: Path | None = None      # the depth map, if one was written


@dataclass(frozen=True)
class Outcome:
    """A job, and what came of it: rendered, or the one-line error."""

    job: Job
    rendered: Rendered | None = None
    error: str | None = None
    internal: bool = False                # the error is a bug (exit 1), not bad input
    unwritten_warning: str | None = None  # the warning of a render whose file could not be written

    @property
    def warning(self) -> str | None:
        return self.unwritten_warning if self.rendered is None else self.rendered.warning


def output_name(rel: Path, suffix: str) -> Path:
    """photo.jpg -> photo<suffix>.jpg (the format, and so the extension, is kept)."""
    return rel.with_name(f"{rel.stem}{suffix}{rel.suffix}") if suffix else rel


DEPTH_SUFFIX = "_depth"          # --save-depth: photo.jpg -> photo_depth.png beside the output


def depth_name(output: Path) -> Path:
    return output.with_name(f"{output.stem}{DEPTH_SUFFIX}.png")


def replaceable(path: Path, source: Path | None = None) -> bool:
    """Whether a run may replace this existing file: an output that bokeh-render wrote and
    nobody has changed since (its note), or a byte-for-byte copy of `source`, the photo it is
    rendered from (portrait mode writes a photo without a person unchanged): nothing is lost."""
    try:
        data = path.read_bytes()
        return is_output(data) or (source is not None and data == source.read_bytes())
    except OSError:
        return False


def earlier_output(f: Path, suffix: str) -> bool:
    """In the input folder: a file with the suffix (or the depth map saved beside such a file)
    that this command wrote. A photo of the user's that merely has the suffix is a photo."""
    if f.stem.endswith(suffix + DEPTH_SUFFIX) and replaceable(f):
        return True
    return f.stem.endswith(suffix) and replaceable(f, f.with_name(f.stem[:-len(suffix)] + f.suffix))


def collect_jobs(args_inputs: list[str], out_dir: Path, suffix: str = "", save_depth: bool = False) -> list[Job]:
    """One job per photo: files as given, folders searched recursively (outputs kept out).

    Writing into an input folder needs a --suffix; earlier outputs there (files with it, or
    the depth maps saved beside them, that this command wrote) are not rendered again.
    Every name a job will write (with `save_depth`, its depth map too) is checked against
    the inputs and against every other job's; a file already at one of them that is not
    ours to replace stops the whole run (OutputError) before anything is rendered.
    """
    jobs: list[Job] = []
    out_resolved = out_dir.resolve()
    for arg in args_inputs:
        path = Path(arg)
        if path.is_dir():
            beside = path.resolve() == out_resolved
            if beside and not suffix:
                raise OutputError(f"the output folder {out_dir} is the input folder {path}: the outputs "
                                  "would replace the photos; choose another -o, or add --suffix _bokeh "
                                  "to write each result beside its photo")
            for f in sorted(path.rglob("*")):
                rel = f.relative_to(path)
                if not (f.is_file() and format_for_path(f)) or any(p.startswith(".") for p in rel.parts):
                    continue
                if beside and earlier_output(f, suffix):
                    continue                       # an earlier output of this command, or its depth map
                if not beside and f.resolve().is_relative_to(out_resolved):
                    continue                       # -o is a folder inside the input folder
                jobs.append(_job(f, out_dir / output_name(rel, suffix), save_depth))
        else:
            jobs.append(_job(path, out_dir / output_name(Path(path.name), suffix), save_depth))
    inputs = {j.input.resolve() for j in jobs}
    for job in jobs:
        for target, source in ((job.output, job.input), (job.depth_output, None)):
            if (target is not None and target.is_file() and target.resolve() != job.input.resolve()
                    and not replaceable(target, source)):
                raise OutputError(f"{target} exists and is not an output of {PROG} (or was changed "
                                  f"since): rendering {job.input} would replace it; choose another -o "
                                  "or --suffix")
    claimed: dict[Path, Path] = {}
    for job in jobs:
        targets = [job.output] + ([job.depth_output] if save_depth else [])
        for target in targets:
            where = target.resolve()
            if where in inputs:
                job.error = (f"output {target} would overwrite an input; choose another -o, "
                             "or add --suffix _bokeh")
            elif where in claimed:
                job.error = f"output {target} is already written for {claimed[where]}; rename one of them"
            if job.error:
                break
        else:
            claimed.update({t.resolve(): job.input for t in targets})
    return jobs


def _job(photo: Path, output: Path, save_depth: bool) -> Job:
    return Job(photo, output, depth_name(output) if save_depth else None)


def check_out_dir(out_dir: Path) -> None:
    try:
        ensure_writable_dir(out_dir)
    except FolderNotWritable as exc:
        raise OutputError(str(exc)) from None


class NotWritten(OutputError):
    """Rendered, but the output could not be written; the render's warning still stands."""

    def __init__(self, message: str, warning: str | None):
        super().__init__(message)
        self.warning = warning


def render_file(mode, job: Job, max_pixels: int) -> Rendered:
    """Read, render and write one photo (and its depth map, if the mode gives one): both files,
    or neither. RuntimeInputError with one line when the photo or its render is refused."""
    t0 = time.perf_counter()
    photo = read_photo(job.input, max_pixels)
    size = photo.pixels.shape[:2]
    result = mode.render(photo.pixels, str(job.input))
    try:
        job.output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NotWritten(f"cannot create {job.output.parent} ({exc.strerror or exc})", result.warning) from None
    if result.unchanged:
        data = read_bytes(job.input)            # "left unchanged" means the very same bytes
    else:
        data = note_output(encode_photo(Photo(result.pixels, photo.format, photo.lossless, photo.metadata),
                                        in_place=True), photo.format)
    depth, warning, focus = result.depth, result.warning, result.focus
    del photo, result           # the full-size pixels are encoded: let them go
    written = {job.output: data}
    if depth is not None:
        depth16 = np.rint(np.clip(depth, 0.0, 1.0) * 65535.0).astype(np.uint16)
        written[job.depth_output] = note_output(encode_photo(Photo(depth16, "png")), "png")
    try:
        write_all(written)      # both files, or neither
    except RuntimeInputError as exc:
        raise NotWritten(str(exc), warning) from None
    return Rendered(size, time.perf_counter() - t0, warning, focus, job.depth_output if depth is not None else None)


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, _parse_and_run, argv)


def _parse_and_run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.describe is not None:
        if args.inputs or args.out is not None:
            parser.error("--describe MODEL.tflite takes no photos and no -o (only --json)")
        return _describe(args.describe, args.json)
    missing = [name for name, value in (("INPUT", args.inputs), ("-o/--out", args.out)) if not value]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)}")
    return _run(args)


def _describe(model: Path, as_json: bool) -> int:
    from .describe import describe, format_description
    try:
        data = describe(model)
    except RuntimeInputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        print(json.dumps(data, indent=2) if as_json else format_description(data), flush=True)
    except BrokenPipeError:             # `| head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    import cv2
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)   # we say what failed ourselves

    def fail(message: str) -> int:
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT

    if args.model is not None and args.model.name == SEGMENTER_FILE:
        return fail(f"{args.model} is the person segmenter of a portrait pipeline, not a bokeh model; "
                    "render portraits with --portrait --models DIR, or -m with the portrait model")
    kind = _mode_kind(args)
    refused = _flags_refused(args, kind)
    if refused is not None:
        return fail(refused)
    model = args.model
    if kind == "portrait":
        model = args.models or DEFAULT_MODELS
    elif model is None:
        model, track = (DEFAULT_MODEL, "gpu") if kind == "plain" else (DEFAULT_RENDER_MODEL, "render")
        if not model.is_file():
            return fail(f"no model given and {model} does not exist; export it with "
                        f"`export-tflite --track {track}` (or pass -m MODEL.tflite)")
    try:
        jobs = collect_jobs(args.inputs, args.out, args.suffix or "", args.save_depth)
    except OutputError as exc:
        return fail(str(exc))
    if not jobs:
        return fail("no photos found in " + ", ".join(args.inputs))
    progress = Progress(len(jobs))
    try:
        check_out_dir(args.out)
        if args.backend == "litert-gpu":
            what = f"the portrait pipeline in {model}" if kind == "portrait" else str(model)
            progress.note(f"{PROG}: compiling {what} for LiteRT's GPU accelerator (on a software GPU such as "
                          "SwiftShader, minutes for a full-size model)")
        mode = build_mode(args, kind, model)
    except RuntimeInputError as exc:
        return fail(str(exc))

    t0 = time.perf_counter()
    outcomes = []
    for i, job in enumerate(jobs):
        progress.update(i, job.input.name)
        outcome = _render_job(mode, job, args.max_pixels)
        outcomes.append(outcome)
        if outcome.warning is not None:
            progress.message(f"{PROG}: warning: {outcome.warning}")
        if outcome.error is not None:
            progress.message(f"{PROG}: {job.input}: {outcome.error}")
        elif not args.json:
            progress.clear()
            print(job.output, flush=True)
    progress.update(len(jobs))
    progress.clear()
    failed = [o for o in outcomes if o.error is not None]
    elapsed = time.perf_counter() - t0
    if args.json:
        print(json.dumps(_report(mode, args.out, outcomes, elapsed), indent=2))
    renderer = mode.renderer
    done = len(jobs) - len(failed)
    where = (f"on {renderer.adapter['name']}" if renderer.adapter is not None
             else f"{renderer.threads} thread{'s' if renderer.threads != 1 else ''}")
    summary = (f"{PROG}: rendered {done} of {len(jobs)} photos into {args.out} in {elapsed:.1f} s "
               f"({renderer.backend}, {where})")
    if failed:
        summary += f"; {len(failed)} failed: " + ", ".join(str(o.job.input) for o in failed)
    if renderer.contract.weights == "untrained" and done:
        summary += f"; {UNTRAINED}"
    if len(jobs) > 1 or not failed:      # a single failure has already said everything
        print(summary, file=sys.stderr)
    if any(o.internal for o in failed):
        return EXIT_INTERNAL
    return EXIT_BAD_INPUT if failed else EXIT_OK


def _render_job(mode, job: Job, max_pixels: int) -> Outcome:
    if job.error is not None:
        return Outcome(job, error=job.error)
    try:
        return Outcome(job, render_file(mode, job, max_pixels))
    except NotWritten as exc:
        return Outcome(job, error=str(exc), unwritten_warning=exc.warning)
    except RuntimeInputError as exc:
        return Outcome(job, error=str(exc))
    except Exception as exc:              # a bug: report it, keep going with the batch
        return Outcome(job, error=f"internal error: {type(exc).__name__}: {exc}", internal=True)


# The summary line of every render with seeded untrained weights (docs/contract.md, F8).
UNTRAINED = ("untrained weights: the model blurs the whole photo; export with --checkpoint "
             "(train-bokeh) for a learned bokeh")


def _is_portrait_model(model: Path) -> bool:
    """-m with a portrait-track model renders a portrait, as --portrait does (and bokeh-native);
    an unreadable contract is for the renderer to report."""
    from .sidecar import read_sidecar
    try:
        return read_sidecar(model).get("track") == "portrait"
    except RuntimeInputError:
        return False


# --- the modes and their flags ------------------------------------------------------------------
# Every other flag goes with every mode. A mode refuses a flag it does not take, naming the first
# in MODE_FLAGS' order.
MODE_FLAGS = ("--models", "--save-depth", "--depth", "-m", "--focus", "--focus-disparity", "--aperture",
              "--depth-is-depth")
DEPTH_FLAGS = ("--depth", "--focus", "--focus-disparity", "--aperture", "--depth-is-depth")
TAKES = {"plain": ("-m",),
         "depth": ("-m", *DEPTH_FLAGS),
         "portrait": ("--models", "--save-depth", "--aperture"),           # --portrait [--models DIR]
         "portrait model": ("-m", "--save-depth", "--aperture")}           # -m with a portrait-track model


def _mode_kind(args: argparse.Namespace) -> str:
    """Which mode the flags ask for: one of TAKES."""
    if args.portrait:
        return "portrait"
    if args.model is not None and _is_portrait_model(args.model):
        return "portrait model"
    return "plain" if args.depth is None else "depth"


def _flags_refused(args: argparse.Namespace, kind: str) -> str | None:
    """The one-line reason the flags do not fit mode `kind`, or None when they do."""
    values = {"--models": args.models, "--save-depth": args.save_depth, "--depth": args.depth, "-m": args.model,
              "--focus": args.focus, "--focus-disparity": args.focus_disparity, "--aperture": args.aperture,
              "--depth-is-depth": args.depth_is_depth}
    foreign = [flag for flag in MODE_FLAGS if values[flag] not in (None, False) and flag not in TAKES[kind]]
    if foreign and kind == "portrait":
        return (f"{foreign[0]} does not go with --portrait: the segmenter gives the depth, the person is the "
                "focus, and the models come from --models DIR")
    if foreign and kind == "portrait model":
        return f"{foreign[0]} does not go with a portrait model: it derives the depth and the focus"
    if foreign:
        home = ("--depth FILE (a depth-guided model and the photo's disparity map)" if foreign[0] in DEPTH_FLAGS
                else "--portrait")
        return f"{foreign[0]} goes with {home}"
    if kind == "depth" and (len(args.inputs) != 1 or Path(args.inputs[0]).is_dir()):
        return (f"--depth is the disparity map of one photo; give exactly one photo file, "
                f"not {', '.join(args.inputs)}")
    return None


def build_mode(args: argparse.Namespace, kind: str, model: Path):
    """Open the mode `kind` once for the whole run: its models, and for the depth mode the map,
    read and normalised. RuntimeInputError when the model does not fit the mode."""
    from .modes import DepthMode, DepthSettings, PlainMode, PortraitMode
    opened = {"threads": args.threads, "backend": args.backend, "xnnpack": args.xnnpack}
    if kind in ("portrait", "portrait model"):
        from .portrait import PortraitRenderer, find_pipeline
        model = model if kind == "portrait model" else find_pipeline(model)
        return PortraitMode(PortraitRenderer(model, **opened), model, args.aperture, args.save_depth)
    from .renderer import BokehRenderer
    renderer = BokehRenderer(model, **opened)
    contract = renderer.contract
    if contract.depth_guided and args.depth is None:
        raise DepthError(f"{model} is a depth-guided (render-track) model: give the photo's "
                         "disparity map with --depth FILE")
    if not contract.depth_guided and args.depth is not None:
        raise DepthError(f"--depth needs a depth-guided model (export-tflite --track render); "
                         f"{model} is a {contract.track}-track model")
    if args.depth is None:
        return PlainMode(renderer)
    from .depth import read_disparity
    from .host_steps import chosen_aperture
    disparity, notes = read_disparity(args.depth, args.depth_is_depth, args.max_pixels)
    return DepthMode(renderer, DepthSettings(args.depth, args.depth_is_depth, disparity, notes, args.focus,
                                             args.focus_disparity, chosen_aperture(contract.host, args.aperture),
                                             contract.host))


def _report(mode, out_dir: Path, outcomes: list[Outcome], elapsed: float) -> dict:
    files = []
    for o in outcomes:
        job, done = o.job, o.rendered
        entry = {"input": str(job.input), "output": str(job.output) if job.output else None, "ok": o.error is None}
        if done is not None:
            entry.update(size=list(done.size), seconds=round(done.seconds, 4))
            if done.focus is not None:
                entry["focus_disparity"] = round(done.focus, 6)
            if done.depth_output is not None:
                entry["depth"] = str(done.depth_output)
        else:
            entry["error"] = o.error
        if o.warning is not None:
            entry["warning"] = o.warning
        files.append(entry)
    failed = sum(not f["ok"] for f in files)
    renderer = mode.renderer
    report = {"model": str(mode.model), "track": renderer.contract.track, "weights": renderer.contract.weights,
              "input_size": list(renderer.input_size), "backend": renderer.backend,
              "threads": renderer.threads, "xnnpack": renderer.xnnpack,
              "adapter": renderer.adapter["name"] if renderer.adapter is not None else None,
              "out_dir": str(out_dir),
              "rendered": len(files) - failed, "failed": failed, "seconds": round(elapsed, 3),
              "peak_rss_mb": round(peak_rss_mb(), 1), "files": files}
    report.update(mode.report())        # the mode's own section: "depth" or "portrait"
    return report


if __name__ == "__main__":
    sys.exit(main())
