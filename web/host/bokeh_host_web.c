/* The page's host steps: libbokeh's own android/native/src/host.c, compiled to WebAssembly
 * (web/host/build.sh), with these few wrappers so that JavaScript passes plain numbers and
 * pointers instead of C structs. No arithmetic of the contract is written here: every rule
 * (docs/contract.md R1-R10) is host.c's, the same C an Android app links; the golden
 * vectors (tests/fixtures/golden/host_steps.json) hold this build to it
 * (tests/test_web_host.py). The row loop of bkw_blend is bokeh.c's blend_rows. */
#include <emscripten/emscripten.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

#define API EMSCRIPTEN_KEEPALIVE

static void fit(int ph, int pw, int mh, int mw, bk_letterbox *box) { bk_letterbox_fit(ph, pw, mh, mw, box); }

/* R1: out[0..3] = top, left, height, width of the photo's box; returns the scale. */
API double bkw_letterbox(int ph, int pw, int mh, int mw, int *out) {
    bk_letterbox box;
    fit(ph, pw, mh, mw, &box);
    out[0] = box.top;
    out[1] = box.left;
    out[2] = box.height;
    out[3] = box.width;
    return bk_letterbox_scale(&box);
}

/* R1: an aperture in photo pixels as the model takes it, float32(aperture * scale). */
API float bkw_model_aperture(int ph, int pw, int mh, int mw, double aperture) {
    bk_letterbox box;
    fit(ph, pw, mh, mw, &box);
    return (float)(aperture * bk_letterbox_scale(&box));
}

/* R2-R3: a photo (ph x pw x cn uint8, cn 1 or 3) -> (1, mh, mw, 3) float32. */
API int bkw_fit_photo(const uint8_t *px, int cn, int ph, int pw, int mh, int mw, float *out) {
    bk_letterbox box;
    fit(ph, pw, mh, mw, &box);
    return bk_fit_photo(px, cn, &box, out, 1);
}

/* R4: a disparity map at the photo's size -> (1, mh, mw, 1). */
API int bkw_fit_map(const float *map, int ph, int pw, int mh, int mw, float *out) {
    bk_letterbox box;
    fit(ph, pw, mh, mw, &box);
    return bk_fit_map(map, &box, out);
}

/* R3 in float (portrait: the model image into the segmenter's input). */
API int bkw_fit_image_f32(const float *rgb, int ph, int pw, int mh, int mw, float *out) {
    bk_letterbox box;
    fit(ph, pw, mh, mw, &box);
    return bk_fit_image_f32(rgb, &box, out);
}

/* R5: a model output (th x tw x cn) sampled at every photo pixel -> ph x pw x cn. */
API int bkw_sample(int ph, int pw, int mh, int mw, const float *tensor, int th, int tw, int cn, float *out) {
    bk_letterbox box;
    bk_sampler s;
    fit(ph, pw, mh, mw, &box);
    if (bk_sampler_init(&s, &box, th, tw)) return -1;
    for (int y = 0; y < ph; y++) bk_sample_row(&s, tensor, cn, y, out + (size_t)y * pw * cn);
    bk_sampler_free(&s);
    return 0;
}

/* R5 + R6 on a whole RGBA photo (w x h, 4 bytes a pixel), in place: B (bh x bw x 3) and D
 * (dh x dw) sampled back through the letterbox and blended (Eq. 9), row by row as libbokeh's
 * blend_rows does. grey: the photo is grey (R = G = B), and gets the Rec. 601 luma of the
 * blend in all three bytes, as a grey photo does in bokeh-render. Alpha is not touched. */
API int bkw_blend(uint8_t *rgba, int w, int h, int grey, int mh, int mw, const float *bokeh, int bh, int bw,
                  const float *defocus, int dh, int dw, float eta, float tau) {
    bk_letterbox box;
    bk_sampler sb, sd;
    fit(h, w, mh, mw, &box);
    float *brow = malloc(sizeof(float) * (size_t)w * 3), *drow = malloc(sizeof(float) * (size_t)w);
    if (!brow || !drow || bk_sampler_init(&sb, &box, bh, bw)) {
        free(brow);
        free(drow);
        return -1;
    }
    if (bk_sampler_init(&sd, &box, dh, dw)) {
        bk_sampler_free(&sb);
        free(brow);
        free(drow);
        return -1;
    }
    for (int y = 0; y < h; y++) {
        uint8_t *row = rgba + (size_t)y * w * 4;
        bk_sample_row(&sb, bokeh, 3, y, brow);
        bk_sample_row(&sd, defocus, 1, y, drow);
        if (grey) {
            bk_blend_row(row, 4, 0, 0, 0, 1, w, brow, drow, eta, tau, row);
            for (int x = 0; x < w; x++) row[4 * x + 1] = row[4 * x + 2] = row[4 * x];
        } else {
            bk_blend_row(row, 4, 0, 1, 2, 0, w, brow, drow, eta, tau, row);
        }
    }
    bk_sampler_free(&sb);
    bk_sampler_free(&sd);
    free(brow);
    free(drow);
    return 0;
}
