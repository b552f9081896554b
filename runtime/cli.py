"""bokeh-render: render bokeh on photos with an exported .tflite model.

Image-only models (cpu, gpu tracks) render from the photo alone; a depth-guided model
(render track) also takes the photo's disparity map (--depth), a focus and an aperture.
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
from .depth import centre_focus, fit_disparity, focus_at, read_disparity
from .errors import DepthError, OutputError, RuntimeInputError
from .header import is_output, note_output
from .photo import DEFAULT_MAX_PIXELS, Photo, encode_photo, format_for_path, read_bytes, read_photo, write_all
from .progress import Progress
from .sidecar import HostParameters

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
                        "Vulkan driver or SwiftShader)")
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
class DepthSettings:
    """--depth and its companions; the map is read and normalised before the photo is."""

    path: Path
    is_depth: bool
    disparity: np.ndarray                 # normalised, at the map's own size
    notes: list[str]                      # repairs already made, for the warning line
    point: tuple[int, int] | None
    focus: float | None
    aperture: float
    host: HostParameters                  # the model's focus window, centre box and ratio tolerance

    def for_photo(self, size: tuple[int, int]) -> tuple[np.ndarray, float, list[str]]:
        """(disparity at the photo's size, focal-plane disparity, notes) for one photo."""
        disparity, notes = fit_disparity(self.disparity, size, self.host.ratio_tolerance)
        if self.point is not None:
            focus = focus_at(disparity, *self.point, window=self.host.focus_window)
        elif self.focus is not None:
            focus = self.focus
        else:
            focus = centre_focus(disparity, self.host.centre_box)
        return disparity, focus, self.notes + notes


@dataclass
class Job:
    input: Path
    output: Path | None = None
    error: str | None = None
    internal: bool = False
    seconds: float | None = None
    size: tuple[int, int] | None = None
    warning: str | None = None
    focus: float | None = None
    depth_output: Path | None = None


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
                jobs.append(Job(f, out_dir / output_name(rel, suffix)))
        else:
            jobs.append(Job(path, out_dir / output_name(Path(path.name), suffix)))
    inputs = {j.input.resolve() for j in jobs}
    for job in jobs:
        if save_depth:
            job.depth_output = depth_name(job.output)
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


def check_out_dir(out_dir: Path) -> None:
    try:
        ensure_writable_dir(out_dir)
    except FolderNotWritable as exc:
        raise OutputError(str(exc)) from None


def render_file(renderer, job: Job, max_pixels: int, depth: DepthSettings | None = None,
                portrait=None, aperture: float | None = None, save_depth: bool = False) -> None:
    t0 = time.perf_counter()
    photo = read_photo(job.input, max_pixels)
    job.size = photo.pixels.shape[:2]
    disparity = None
    unchanged = False
    if portrait is not None:     # into the photo's own array, as below: one full-size array less
        result = portrait.render(photo.pixels, aperture, out=photo.pixels, disparity=save_depth)
        pixels, disparity, unchanged = result.pixels, result.disparity, result.unchanged
        if result.warning is not None:        # in a batch, the line must say which photo
            job.warning = f"{job.input}: {result.warning}"
    elif depth is None:       # the photo's own pixels take the result: one full-size array less
        pixels = renderer.render(photo.pixels, out=photo.pixels)
    else:
        disparity, job.focus, notes = depth.for_photo(job.size)
        if notes:
            job.warning = f"depth map {depth.path}: " + "; ".join(notes)
        pixels = renderer.render(photo.pixels, disparity, focus=job.focus, aperture=depth.aperture,
                                 out=photo.pixels)
    try:
        job.output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {job.output.parent} ({exc.strerror or exc})") from None
    if unchanged:
        data = read_bytes(job.input)            # "left unchanged" means the very same bytes
    else:
        data = note_output(encode_photo(Photo(pixels, photo.format, photo.lossless, photo.metadata),
                                        in_place=True), photo.format)
    del pixels, photo
    written = {job.output: data}
    if save_depth and disparity is not None and not unchanged:     # no person: no depth of one either
        depth16 = np.rint(np.clip(disparity, 0.0, 1.0) * 65535.0).astype(np.uint16)
        written[job.depth_output] = note_output(encode_photo(Photo(depth16, "png")), "png")
    else:
        job.depth_output = None
    write_all(written)          # both files, or neither
    job.seconds = time.perf_counter() - t0


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
    portrait_model = not args.portrait and args.model is not None and _is_portrait_model(args.model)
    if args.portrait or portrait_model:
        given = {"--depth": args.depth, "-m": None if portrait_model else args.model, "--focus": args.focus,
                 "--focus-disparity": args.focus_disparity, "--depth-is-depth": args.depth_is_depth,
                 "--models": args.models if portrait_model else None}
        clash = [flag for flag, value in given.items() if value not in (None, False)]
        if clash and portrait_model:
            return fail(f"{clash[0]} does not go with a portrait model: it derives the depth and the focus")
        if clash:
            return fail(f"{clash[0]} does not go with --portrait: the segmenter gives the depth, the "
                        "person is the focus, and the models come from --models DIR")
    elif args.models is not None or args.save_depth:
        return fail(f"{'--models' if args.models is not None else '--save-depth'} goes with --portrait")
    elif args.depth is None:
        given = {"--focus": args.focus, "--focus-disparity": args.focus_disparity,
                 "--aperture": args.aperture, "--depth-is-depth": args.depth_is_depth}
        companions = [flag for flag, value in given.items() if value not in (None, False)]
        if companions:
            return fail(f"{companions[0]} goes with --depth FILE (a depth-guided model and the "
                        "photo's disparity map)")
    elif len(args.inputs) != 1 or Path(args.inputs[0]).is_dir():
        return fail(f"--depth is the disparity map of one photo; give exactly one photo file, "
                    f"not {', '.join(args.inputs)}")
    model = args.model
    if args.portrait:
        model = args.models or DEFAULT_MODELS
    elif model is None:
        model, track = (DEFAULT_MODEL, "gpu") if args.depth is None else (DEFAULT_RENDER_MODEL, "render")
        if not model.is_file():
            return fail(f"no model given and {model} does not exist; export it with "
                        f"`export-tflite --track {track}` (or pass -m MODEL.tflite)")
    try:
        jobs = collect_jobs(args.inputs, args.out, args.suffix or "", args.save_depth)
    except OutputError as exc:
        return fail(str(exc))
    if not jobs:
        return fail("no photos found in " + ", ".join(args.inputs))
    try:
        check_out_dir(args.out)
        portrait = depth = None
        if args.portrait or portrait_model:
            from .portrait import PortraitRenderer, find_pipeline
            model = model if portrait_model else find_pipeline(model)
            portrait = PortraitRenderer(model, threads=args.threads, backend=args.backend, xnnpack=args.xnnpack)
            renderer = portrait.renderer
        else:
            from .renderer import BokehRenderer
            renderer = BokehRenderer(model, threads=args.threads, backend=args.backend, xnnpack=args.xnnpack)
            depth = _depth_settings(args, renderer, model)
    except RuntimeInputError as exc:
        return fail(str(exc))

    progress = Progress(len(jobs))
    t0 = time.perf_counter()
    for i, job in enumerate(jobs):
        progress.update(i, job.input.name)
        if job.error is None:
            try:
                render_file(renderer, job, args.max_pixels, depth, portrait, args.aperture, args.save_depth)
            except RuntimeInputError as exc:
                job.error = str(exc)
            except Exception as exc:              # a bug: report it, keep going with the batch
                job.error, job.internal = f"internal error: {type(exc).__name__}: {exc}", True
        if job.warning is not None:
            progress.message(f"{PROG}: warning: {job.warning}")
        if job.error is not None:
            progress.message(f"{PROG}: {job.input}: {job.error}")
        elif not args.json:
            progress.clear()
            print(job.output, flush=True)
    progress.update(len(jobs))
    progress.clear()
    failed = [j for j in jobs if j.error is not None]
    elapsed = time.perf_counter() - t0
    if args.json:
        report = _report(renderer, model, args.out, jobs, elapsed, depth)
        if portrait is not None:
            report["portrait"] = {"pipeline": str(model), "segmenter": portrait.spec["segmenter"]["file"],
                                  "aperture": (renderer.contract.host.default_aperture if args.aperture is None
                                               else args.aperture)}
        print(json.dumps(report, indent=2))
    done = len(jobs) - len(failed)
    where = (f"on {renderer.adapter['name']}" if renderer.adapter is not None
             else f"{renderer.threads} thread{'s' if renderer.threads != 1 else ''}")
    summary = (f"{PROG}: rendered {done} of {len(jobs)} photos into {args.out} in {elapsed:.1f} s "
               f"({renderer.backend}, {where})")
    if failed:
        summary += f"; {len(failed)} failed: " + ", ".join(str(j.input) for j in failed)
    if renderer.contract.weights == "untrained" and done:
        summary += f"; {UNTRAINED}"
    if len(jobs) > 1 or not failed:      # a single failure has already said everything
        print(summary, file=sys.stderr)
    if any(j.internal for j in failed):
        return EXIT_INTERNAL
    return EXIT_BAD_INPUT if failed else EXIT_OK


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


def _depth_settings(args: argparse.Namespace, renderer, model: Path) -> DepthSettings | None:
    """Check that the model and --depth go together; read and normalise the map once."""
    contract = renderer.contract
    if contract.depth_guided and args.depth is None:
        raise DepthError(f"{model} is a depth-guided (render-track) model: give the photo's "
                         "disparity map with --depth FILE")
    if not contract.depth_guided and args.depth is not None:
        raise DepthError(f"--depth needs a depth-guided model (export-tflite --track render); "
                         f"{model} is a {contract.track}-track model")
    if args.depth is None:
        return None
    disparity, notes = read_disparity(args.depth, args.depth_is_depth, args.max_pixels)
    aperture = contract.host.default_aperture if args.aperture is None else args.aperture
    return DepthSettings(args.depth, args.depth_is_depth, disparity, notes, args.focus,
                         args.focus_disparity, aperture, contract.host)


def _report(renderer, model: Path, out_dir: Path, jobs: list[Job], elapsed: float,
            depth: DepthSettings | None = None) -> dict:
    files = []
    for j in jobs:
        entry = {"input": str(j.input), "output": str(j.output) if j.output else None, "ok": j.error is None}
        if j.error is None:
            entry.update(size=list(j.size), seconds=round(j.seconds, 4))
            if j.focus is not None:
                entry["focus_disparity"] = round(j.focus, 6)
            if j.depth_output is not None:
                entry["depth"] = str(j.depth_output)
        else:
            entry["error"] = j.error
        if j.warning is not None:
            entry["warning"] = j.warning
        files.append(entry)
    failed = sum(not f["ok"] for f in files)
    report = {"model": str(model), "track": renderer.contract.track, "weights": renderer.contract.weights,
              "input_size": list(renderer.input_size), "backend": renderer.backend,
              "threads": renderer.threads, "xnnpack": renderer.xnnpack,
              "adapter": renderer.adapter["name"] if renderer.adapter is not None else None,
              "out_dir": str(out_dir),
              "rendered": len(files) - failed, "failed": failed, "seconds": round(elapsed, 3),
              "peak_rss_mb": round(peak_rss_mb(), 1), "files": files}
    if depth is not None:
        focus = ({"point": list(depth.point)} if depth.point is not None
                 else {"disparity": depth.focus} if depth.focus is not None else "centre")
        report["depth"] = {"map": str(depth.path), "is_depth": depth.is_depth, "aperture": depth.aperture,
                           "focus": focus}
    return report


if __name__ == "__main__":
    sys.exit(main())
