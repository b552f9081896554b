"""bokeh-web: serve the bokeh page (web/) and a folder of exported models to a browser.

    bokeh-web --models artifacts/                 # http://127.0.0.1:8000/
    bokeh-web --models artifacts/ --host 0.0.0.0  # a phone on the same network (see docs/web.md)

The page runs everything in the browser: the photo never leaves it, LiteRT.js runs the
model on WebGPU or on WebAssembly, and libbokeh's host steps (compiled to WebAssembly) fit
the photo and blend the result. This server only hands out files, read-only:

- the page and its modules (web/*.html, *.mjs, *.css), the host steps' build (web/host/*.mjs,
  *.wasm) and LiteRT.js's module and wasm builds (web/node_modules/@litertjs/..., installed
  with `npm ci --prefix web`);
- the models in --models DIR: its .tflite files and their sidecar .json, and
  /models/index.json, the list the page offers;

and nothing else: no directory listing, no file outside those folders (a `..` or a symbolic
link that leads out is a 404), no other method than GET and HEAD. Every answer carries
Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp, so
the page is cross-origin isolated and LiteRT.js may run its threaded wasm build.

Standard library only (http.server): no numpy, no LiteRT, no torch or TensorFlow.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import re
import socket
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from ..usage import OneLineParser

PROG = "bokeh-web"
DEFAULT_PORT = 8000
WEB_DIR = Path(__file__).resolve().parents[1] / "web"
LITERT = "node_modules/@litertjs"
# Folders of web/ the page may load from (relative to web/), and the file types each holds.
# Files directly in a folder only: nothing deeper, so web/test/ and the rest of
# node_modules/ (the test driver's Playwright) are never served.
WEB_FOLDERS = {
    "": (".html", ".mjs", ".css", ".svg", ".png", ".ico"),
    "host": (".mjs", ".wasm"),
    f"{LITERT}/core/dist": (".js",),
    f"{LITERT}/core/wasm": (".js", ".wasm"),
    f"{LITERT}/wasm-utils/dist": (".js",),
}
MODEL_TYPES = (".tflite", ".json")
TYPES = {".html": "text/html; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
         ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".wasm": "application/wasm",
         ".json": "application/json", ".tflite": "application/octet-stream", ".svg": "image/svg+xml",
         ".png": "image/png", ".ico": "image/x-icon"}
# Every answer: cross-origin isolation (threaded wasm needs SharedArrayBuffer), nothing framed
# or sniffed, nothing cached (a re-export must not be shadowed by the browser's copy), and a
# policy that lets the page reach this server only.
HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
    "Content-Security-Policy": ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval' 'unsafe-inline' blob:; "
                                "worker-src 'self' blob:; connect-src 'self' blob: data:; img-src 'self' blob: data:; "
                                "style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; "
                                "frame-ancestors 'none'; form-action 'none'"),
}
TRACK_NAME = re.compile(r"bokeh_(cpu|gpu|render|portrait)_(\d+)x(\d+)(?:_[a-z0-9]+)*\.tflite")
CHUNK = 1 << 20


class SetupError(Exception):
    """A bad --models, a missing page or LiteRT.js, a port in use: one line, exit 2."""


def _inside(path: Path, root: Path) -> bool:
    """Whether `path`, every link followed, is `root` or under it."""
    try:
        real = Path(os.path.realpath(path))
    except (OSError, ValueError):
        return False
    return real == root or root in real.parents


def _clean_parts(url_path: str) -> list[str] | None:
    """The decoded path's segments, or None when one is empty, hidden, `.`/`..`, or holds a
    character no served name has (NUL, a backslash)."""
    path = unquote(url_path, errors="strict") if "%" in url_path else url_path
    if not path.startswith("/") or "\\" in path or "\x00" in path:
        return None
    parts = path[1:].split("/")
    if parts == [""]:
        return []
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    return parts


class Site:
    """What one bokeh-web serves: the page's folder and the models' folder."""

    def __init__(self, models: Path, web: Path = WEB_DIR):
        self.models = Path(os.path.realpath(models))
        self.web = Path(os.path.realpath(web))

    def check(self, require_models: bool = True) -> None:
        """SetupError when --models or the page is unusable."""
        if not self.models.exists():
            raise SetupError(f"--models {self.models}: no such folder")
        if not self.models.is_dir():
            raise SetupError(f"--models {self.models}: not a folder (give the folder export-tflite wrote into)")
        try:
            listed = self.model_list()
        except OSError as exc:
            raise SetupError(f"--models {self.models}: cannot read it ({exc.strerror or exc})") from None
        if not listed and require_models:
            raise SetupError(f"--models {self.models}: holds no bokeh model (.tflite); export one with "
                             f"`export-tflite -o {self.models}`")
        if not (self.web / "index.html").is_file():
            raise SetupError(f"the page is missing ({self.web}/index.html): bokeh-web serves the web/ folder of a "
                             "bokehlite checkout (give it with --web DIR)")
        if not (self.web / LITERT / "core" / "wasm").is_dir() or not (self.web / LITERT / "wasm-utils").is_dir():
            raise SetupError(f"LiteRT.js is not installed in {self.web}: run `npm ci --prefix {self.web}`")

    def model_list(self) -> list[dict]:
        """The bokeh models in the folder, as /models/index.json lists them (segmenters are
        not listed: a portrait model names its own)."""
        found = []
        for entry in sorted(os.scandir(self.models), key=lambda e: e.name):
            name = entry.name
            if (name.startswith(".") or not name.endswith(".tflite") or name.endswith("_segmenter.tflite")
                    or not entry.is_file() or not _inside(Path(entry.path), self.models)):
                continue
            sidecar = name[:-len(".tflite")] + ".json"
            track, size = self._describe(name, self.models / sidecar)
            found.append({"file": name, "track": track, "input_size": size,
                          "sidecar": sidecar if self.model_file(sidecar) else None,
                          "size_bytes": entry.stat().st_size})
        return found

    def _describe(self, name: str, sidecar: Path) -> tuple[str | None, list[int] | None]:
        """(track, [H, W]) from the sidecar when there is a readable one, else from the name
        export-tflite gives (bokeh_<track>_<H>x<W>...); None when neither says."""
        try:
            if _inside(sidecar, self.models) and sidecar.is_file() and sidecar.stat().st_size < (1 << 20):
                data = json.loads(sidecar.read_text(encoding="utf-8"))
                size = data.get("input_size")
                if isinstance(data.get("track"), str):
                    return data["track"], size if isinstance(size, list) else None
        except (OSError, ValueError, RecursionError, AttributeError):
            pass
        m = TRACK_NAME.fullmatch(name)
        return (m.group(1), [int(m.group(2)), int(m.group(3))]) if m else (None, None)

    def model_file(self, name: str) -> Path | None:
        path = self.models / name
        if "/" in name or name.startswith(".") or not name.endswith(MODEL_TYPES):
            return None
        return path if path.is_file() and _inside(path, self.models) else None

    def resolve(self, url_path: str) -> Path | None:
        """The file a URL path names, or None: only the page's folders, the models."""
        try:
            parts = _clean_parts(url_path)
        except UnicodeDecodeError:
            return None
        if parts is None:
            return None
        if parts == []:
            parts = ["index.html"]
        if parts[0] == "models":
            return self.model_file(parts[1]) if len(parts) == 2 else None
        folder, name = "/".join(parts[:-1]), parts[-1]
        suffixes = WEB_FOLDERS.get(folder)
        if suffixes is None or not name.endswith(suffixes):
            return None
        path = self.web / folder / name
        return path if path.is_file() and _inside(path, self.web / folder) else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"          # keep-alive: the page loads some twenty files

    def version_string(self):
        return PROG
    site: Site
    verbose = False

    def do_GET(self):
        self._answer(body=True)

    def do_HEAD(self):
        self._answer(body=False)

    def _refuse(self):
        self._status(HTTPStatus.METHOD_NOT_ALLOWED, b"bokeh-web serves files read-only: GET and HEAD only\n",
                     extra={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

    def _answer(self, body: bool):
        path = self.path.split("?", 1)[0].split("#", 1)[0]     # the path as sent: no "//host" parsing
        if path == "/models/index.json":
            data = json.dumps({"models": self.site.model_list(), "folder": self.site.models.name}).encode()
            self._send(HTTPStatus.OK, TYPES[".json"], len(data), body and [data])
            return
        target = self.site.resolve(path)
        if target is None:
            self._status(HTTPStatus.NOT_FOUND, b"not found\n", body=body)
            return
        try:
            f = open(target, "rb")
        except OSError:
            self._status(HTTPStatus.NOT_FOUND, b"not found\n", body=body)
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            self._send(HTTPStatus.OK, TYPES.get(target.suffix, "application/octet-stream"), size,
                       body and iter(lambda: f.read(CHUNK), b""))

    def _status(self, status, text: bytes, body: bool = True, extra: dict | None = None):
        self._send(status, "text/plain; charset=utf-8", len(text), body and [text], extra)

    def _send(self, status, ctype: str, length: int, chunks, extra: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        for key, value in {**HEADERS, **(extra or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        try:
            for chunk in chunks or ():
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format, *args):
        if self.verbose:
            sys.stderr.write(f"{PROG}: {self.address_string()} {format % args}\n")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):      # a browser that hangs up is no traceback
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def make_server(models: str | os.PathLike, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                web: str | os.PathLike = WEB_DIR, verbose: bool = False, require_models: bool = True) -> Server:
    """A checked, bound server (not yet serving: call serve_forever, in a thread if need be).
    SetupError with one line when the folders or the address are unusable (or, unless
    require_models is False, when the models folder lists no bokeh model)."""
    site = Site(Path(models), Path(web))
    site.check(require_models)
    handler = type("BoundHandler", (Handler,), {"site": site, "verbose": verbose})
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server_class = type("BoundServer", (Server,), {"address_family": family})
    try:
        return server_class((host, port), handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SetupError(f"port {port} on {host} is in use (choose another with --port)") from None
        raise SetupError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None


def url_of(server: Server) -> str:
    host, port = server.server_address[:2]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Serve the bokeh page and a folder of exported models to a browser "
                                             "(everything runs in the browser: WebGPU or WebAssembly).",
                      epilog="examples:\n  bokeh-web --models artifacts/\n"
                             "  bokeh-web --models artifacts/ --host 0.0.0.0 --port 8080   # a phone on this "
                             "network; read docs/web.md first",
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", required=True, type=Path, metavar="DIR",
                   help="folder of exported models (.tflite with their sidecar .json, a portrait model with its "
                        "segmenter), served read-only")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="N",
                   help=f"TCP port (default: {DEFAULT_PORT}; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                   help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0: every interface, "
                        "so that a phone on the same network can open the page: anyone there can then fetch "
                        "the page and the models)")
    p.add_argument("--web", type=Path, default=WEB_DIR, metavar="DIR",
                   help="the page's folder, with LiteRT.js installed in it by `npm ci --prefix DIR` (default: "
                        "the web/ folder of this checkout)")
    p.add_argument("--verbose", action="store_true", help="log every request on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        print(f"{PROG}: error: --port must be from 0 to 65535, got {args.port}", file=sys.stderr)
        return 2
    try:
        server = make_server(args.models, args.host, args.port, web=args.web, verbose=args.verbose)
    except SetupError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    count = len(server.RequestHandlerClass.site.model_list())
    url = url_of(server)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"{PROG}: warning: listening on {args.host}: anyone who can reach this machine can open the page and "
              f"download the models in {args.models}. A phone opens http://<this machine's address>:"
              f"{server.server_address[1]}/ ; over plain http it is not a secure context, so it runs single-"
              "threaded wasm without WebGPU (docs/web.md says how to get both)", file=sys.stderr)
    print(f"{PROG}: serving {count} model{'s' if count != 1 else ''} from {args.models} at {url} "
          "(Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
