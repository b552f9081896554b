#!/usr/bin/env bash
# Compile libbokeh's host steps (android/native/src/host.c) to WebAssembly for the page:
# web/host/bokeh_host.mjs + bokeh_host.wasm. Debian 12's `emscripten` package (3.1.6) works
# offline; its optimizer needs the `acorn` module Debian ships in /usr/share/nodejs.
#
#     web/host/build.sh [OUT_DIR]     # default: web/host (the committed build)
#
# tests/test_web_host.py rebuilds into a temporary folder and checks that the committed files
# are what host.c compiles to today, then runs the golden vectors through them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../android/native/src
out=${1:-$here}
mkdir -p "$out"
command -v emcc >/dev/null || { echo "build.sh: emcc not found (apt-get install emscripten)" >&2; exit 2; }
export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}
# Relative paths only, so the output does not depend on where the checkout is.
cd "$here"
emcc -O2 -std=c11 -Wall -Wextra -Werror \
  -I ../../android/native/src ../../android/native/src/host.c bokeh_host_web.c \
  -o "$out/bokeh_host.mjs" \
  -sMODULARIZE=1 -sEXPORT_ES6=1 -sEXPORT_NAME=createBokehHost -sENVIRONMENT=web,worker \
  -sALLOW_MEMORY_GROWTH=1 -sINITIAL_MEMORY=16777216 -sFILESYSTEM=0 -sASSERTIONS=0 \
  -sEXPORTED_RUNTIME_METHODS=HEAPU8,HEAPU16,HEAPF32,HEAP32 \
  -sEXPORTED_FUNCTIONS=_malloc,_free,_bk_resize_u8,_bk_resize_f32,_bk_blend_row,_bk_median_f32,_bk_centre_focus,_bk_focus_at,_bk_to_disparity_u16,_bk_fit_disparity
