"""bokeh-native beside bokeh-render: one model, one thread count, one photo, end to end.

    bench-runtime --native BUILD/bokeh-native ...            # rows after the suite's report
    python -m bokehlite.benchmarks.native BUILD/bokeh-native MODEL.tflite --threads 2

Each row is a whole command as a user runs it (process start, decode, fit, model, blend,
encode) on a generated JPEG photo of 1024x1536 and of 12 MP (4000x3000), the median of
`runs` commands. bokeh-native's own report splits its time: the host steps of the contract
(fit = letterbox into the model; blend = sample the outputs back + Eq. 9 at the photo's
resolution), the model run, and the file decode/encode. The host share is fit + blend over
the whole command; the target is <= 10% at 12 MP on 2 threads. bokeh-render's split comes
from the same steps timed in this process (BokehRenderer.prepare, run_model and the blend).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# ELF e_machine of the programs this machine runs natively (platform.machine() names).
_ELF_MACHINES = {"x86_64": 62, "amd64": 62, "aarch64": 183, "arm64": 183, "i386": 3, "i686": 3, "armv7l": 40,
                 "riscv64": 243}
_ELF_NAMES = {62: "x86-64", 183: "arm64 (aarch64)", 3: "x86", 40: "32-bit ARM", 243: "RISC-V"}


class EmulatedBinary(RuntimeError):
    """bokeh-native built for another CPU than this machine's: it would run under emulation."""


def emulated(binary: Path) -> str | None:
    """Why `binary` would run under emulation here (qemu-user, binfmt_misc), or None. Times
    under emulation are not the device's (qemu-user runs arm64 code about 100x slower, and
    not in proportion), so they are never timed: time an arm64 build on an arm64 machine."""
    import platform
    try:
        with open(binary, "rb") as f:
            head = f.read(65536)
    except OSError:
        return None
    if head.startswith(b"#!"):                 # a wrapper script such as android/native/run-arm64
        if b"qemu" in head:
            return f"{binary} runs a program under qemu (emulation): times there are not the device's"
        return None
    if head[:4] != b"\x7fELF" or len(head) < 20:
        return None
    machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    here = _ELF_MACHINES.get(platform.machine().lower())
    if here is None or machine == here:
        return None
    return (f"{binary} is a {_ELF_NAMES.get(machine, f'e_machine {machine}')} program and this machine is "
            f"{platform.machine()}: it would run under emulation, whose times are not the device's; "
            f"time it on a machine of its own CPU")

SIZES = ((1024, 1536), (3000, 4000))       # (H, W): the model's own size, and 12 MP
HOST_SHARE_TARGET = 0.10                    # at 12 MP, 2 threads


def make_photo(size: tuple[int, int], folder: Path) -> Path:
    """A JPEG of `size` (H, W): scikit-image's astronaut, resized (photos arrive as JPEG)."""
    import cv2
    import skimage.data
    h, w = size
    path = folder / f"photo_{w}x{h}.jpg"
    if not path.exists():
        pixels = cv2.resize(skimage.data.astronaut()[..., ::-1], (w, h), interpolation=cv2.INTER_LINEAR)
        cv2.imwrite(str(path), pixels, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return path


def _wall(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return seconds * 1e3, proc


def time_native(binary: Path, model: Path, photo: Path, threads: int, runs: int, work: Path) -> dict:
    walls, reports = [], []
    for i in range(runs):
        ms, proc = _wall([str(binary), "-m", str(model), "--accelerator", "cpu", "--threads", str(threads),
                          "--runs", "1", "--json", str(photo), str(work / f"native_{i}.jpg")])
        walls.append(ms)
        reports.append(json.loads(proc.stdout))
    med = lambda key: statistics.median(r["ms"][key] for r in reports)        # noqa: E731
    wall = statistics.median(walls)
    fit, blend, model_ms = med("host_pre"), med("host_post"), med("first_run")
    return {"runtime": "bokeh-native", "wall_ms": wall, "fit_ms": fit, "model_ms": model_ms, "blend_ms": blend,
            "decode_ms": med("decode"), "encode_ms": med("encode"), "load_compile_ms": med("load") + med("compile"),
            "host_share": (fit + blend) / wall, "peak_rss_mb": max(r["peak_rss_mb"] for r in reports)}


def time_python(model: Path, photo: Path, threads: int, runs: int, work: Path) -> dict:
    """bokeh-render as a command (the wall time), and its steps timed here (the split)."""
    walls = []
    for i in range(runs):
        out = work / f"py_{i}"
        ms, _ = _wall([sys.executable, "-m", "bokehlite.runtime.cli", str(photo), "-m", str(model), "-o", str(out),
                       "--backend", "litert", "--threads", str(threads)])
        walls.append(ms)
    from ..runtime.host_steps import blend_photo
    from ..runtime.photo import read_photo
    from ..runtime.renderer import BokehRenderer
    renderer = BokehRenderer(model, threads=threads, backend="litert")
    pixels = read_photo(photo).pixels
    fits, blends, models = [], [], []
    c = renderer.contract
    for _ in range(runs):
        t0 = time.perf_counter()
        x, box = renderer.prepare(pixels)
        t1 = time.perf_counter()
        outputs = renderer.run_model(x)
        t2 = time.perf_counter()
        blend_photo(pixels, outputs[c.blend_source][0], outputs[c.defocus][0, :, :, 0], box, c)
        t3 = time.perf_counter()
        fits.append((t1 - t0) * 1e3)
        models.append((t2 - t1) * 1e3)
        blends.append((t3 - t2) * 1e3)
    wall = statistics.median(walls)
    fit, blend = statistics.median(fits), statistics.median(blends)
    return {"runtime": "bokeh-render", "wall_ms": wall, "fit_ms": fit, "model_ms": statistics.median(models),
            "blend_ms": blend, "host_share": (fit + blend) / wall}


def compare(binary: Path, model: Path, threads: int, runs: int = 3, sizes=SIZES, progress=None) -> list[dict]:
    """Rows for each photo size: bokeh-render, then bokeh-native. Refuses (EmulatedBinary) a
    bokeh-native that would run under emulation."""
    if (why := emulated(binary)):
        raise EmulatedBinary(why)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-native-") as tmp:
        work = Path(tmp)
        for size in sizes:
            photo = make_photo(size, work)
            for timer in (lambda: time_python(model, photo, threads, runs, work),
                          lambda: time_native(binary, model, photo, threads, runs, work)):
                row = {"photo": f"{size[0]}x{size[1]}", "megapixels": round(size[0] * size[1] / 1e6, 1),
                       "model": str(model), "threads": threads, "runs": runs, **timer()}
                rows.append(row)
                if progress:
                    progress(f"{row['runtime']} {row['photo']}: {row['wall_ms']:.0f} ms end to end, "
                             f"host {row['host_share']:.1%}")
    return rows


def target(rows: list[dict]) -> dict | None:
    """The host-share target at 12 MP on 2 threads, where a row measures it."""
    for row in rows:
        if row["runtime"] == "bokeh-native" and row["megapixels"] >= 12 and row["threads"] == 2:
            return {"host_share": row["host_share"], "target": HOST_SHARE_TARGET,
                    "met": row["host_share"] <= HOST_SHARE_TARGET}
    return None


def to_text(rows: list[dict]) -> str:
    header = ["photo", "runtime", "threads", "end to end ms", "fit ms", "model ms", "blend ms", "host share"]
    body = [[r["photo"], r["runtime"], str(r["threads"]), f"{r['wall_ms']:.0f}", f"{r['fit_ms']:.1f}",
             f"{r['model_ms']:.0f}", f"{r['blend_ms']:.1f}", f"{r['host_share']:.1%}"] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()      # noqa: E731
    title = "bokeh-native beside bokeh-render (end to end, median of runs; host = fit + blend)"
    lines = [title, "=" * len(title), fmt(header), fmt(["-" * w for w in widths]), *map(fmt, body)]
    t = target(rows)
    if t is not None:
        lines.append(f"* target: host steps <= {t['target']:.0%} of the whole at 12 MP on 2 threads: "
                     f"{t['host_share']:.1%} ({'met' if t['met'] else 'missed'})")
    return "\n".join(lines) + "\n"


def add_native(results: dict, binary: Path, settings, progress=None) -> str:
    """bench-runtime --native: rows for the gpu track's model (else the first track's) at the
    suite's size and each of its thread counts; kept in results["native"]; the text table."""
    from ..contract import artifact_stem
    from .suite import BenchError
    track = "gpu" if "gpu" in settings.tracks else settings.tracks[0]
    model = Path(settings.artifacts) / f"{artifact_stem(track, settings.size)}.tflite"
    if track == "portrait" or not Path(binary).is_file() or not model.is_file():
        raise BenchError(f"--native {binary}: needs the bokeh-native binary and a cpu- or gpu-track model "
                         f"({model})")
    rows = []
    try:
        for threads in settings.thread_counts():
            rows += compare(Path(binary), model, threads, runs=min(settings.protocol.runs, 3), progress=progress)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"--native: {exc}") from None
    results["native"] = {"rows": rows, "target": target(rows)}
    return to_text(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bokehlite.benchmarks.native",
                                description="Time bokeh-native beside bokeh-render on one model.")
    p.add_argument("binary", type=Path, help="BUILD/bokeh-native")
    p.add_argument("model", type=Path, help="an exported .tflite (cpu or gpu track)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", type=Path, help="write the rows to FILE")
    args = p.parse_args(argv)
    if (why := emulated(args.binary)):
        print(f"{p.prog}: error: {why}", file=sys.stderr)
        return 2
    rows = compare(args.binary, args.model, args.threads, args.runs,
                   progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(to_text(rows))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "target": target(rows)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
