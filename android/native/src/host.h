/* The host-side steps of the export -> runtime contract, in plain C: the letterbox fit
 * (runtime/fit.py), sampling model outputs back onto the photo and the Eq. 9 blend
 * (runtime/blend.py), and the depth glue (runtime/depth.py). Portrait mode needs no glue
 * of its own: the portrait model computes disparity, focus and mask in its graph. Each
 * function matches its Python counterpart to within float32 rounding: docs/contract.md
 * numbers the rules, and tests/test_contract_golden.py holds each function to golden
 * vectors that the Python reference computed.
 * No state, no allocation that is not freed before return except where documented. */
#ifndef BOKEH_HOST_H
#define BOKEH_HOST_H

#include <stddef.h>
#include <stdint.h>

/* Where the photo sits inside the model input (Letterbox in runtime/fit.py). */
typedef struct {
    int photo_h, photo_w;      /* the photo */
    int model_h, model_w;      /* the model input */
    int top, left, height, width;   /* the photo's box inside the model input */
} bk_letterbox;

void bk_letterbox_fit(int photo_h, int photo_w, int model_h, int model_w, bk_letterbox *box);
double bk_letterbox_scale(const bk_letterbox *box);

/* Resize one interleaved image (channels 1..4), as cv2.resize does: INTER_AREA when the
 * target fits inside the source on both axes, else INTER_LINEAR. 0 on success, -1 when out
 * of memory. Source rows are `src_stride` elements apart. */
int bk_resize_u8(const uint8_t *src, int sh, int sw, size_t src_stride, int cn,
                 uint8_t *dst, int dh, int dw, int threads);
int bk_resize_f32(const float *src, int sh, int sw, size_t src_stride, int cn,
                  float *dst, int dh, int dw);

/* Run fn(ctx, r0, r1) over [0, rows) split between up to `threads` threads (the caller's
 * included); returns when all are done. Ranges must be independent. */
typedef void (*bk_rows_fn)(void *ctx, int r0, int r1);
void bk_parallel_rows(int threads, int rows, bk_rows_fn fn, void *ctx);

/* cv2.BORDER_REFLECT_101 index of p in [0, len). */
int bk_reflect101(int p, int len);

/* Photo (h0 x w0 x 3 uint8 RGB, or grey with cn 1) -> model input (1, H, W, 3) float32 in
 * [0, 1]: resize into the box, mirror the borders, divide by 255. */
int bk_fit_photo(const uint8_t *rgb, int cn, const bk_letterbox *box, float *model_input, int threads);
/* Disparity (h0 x w0 float32 in [0, 1]) -> (1, H, W, 1), fitted exactly as the photo is. */
int bk_fit_map(const float *map, const bk_letterbox *box, float *model_input);
/* A float32 RGB image in [0, 1] (h0 x w0 x 3: a model input) -> (1, H, W, 3), fitted as a
 * photo is, in float32 (portrait: the model-size image into the segmenter's input). */
int bk_fit_image_f32(const float *rgb, const bk_letterbox *box, float *model_input);

/* Sampling positions of photo row y / column x in a model output of th rows / tw columns,
 * as cv2.remap (OpenCV 5, float maps) takes them: exact, not rounded to 1/32 pixel. */
typedef struct {
    int *x0, *y0;          /* top-left source pixel, already clamped into the output */
    int *x1, *y1;          /* its right / lower neighbour, clamped (BORDER_REPLICATE) */
    float *fx, *fy;        /* the position's fraction past x0 / y0 */
    int cols, rows;
    int tensor_w;          /* columns of the output it samples */
} bk_sampler;

int bk_sampler_init(bk_sampler *s, const bk_letterbox *box, int th, int tw);
void bk_sampler_free(bk_sampler *s);
/* One photo row of a model output (th x tw x cn float32): out[x * cn + c]. */
void bk_sample_row(const bk_sampler *s, const float *tensor, int cn, int y, float *out);

/* Eq. 9 on one photo row. pixels: `cn_in` uint8 per pixel with the colour at offsets
 * r, g, b (grey: all three the same offset); written to `out` at the same offsets (grey
 * photos get the Rec. 601 luma of the blended RGB). Other bytes (alpha) are not touched. */
void bk_blend_row(const uint8_t *pixels, int step, int r, int g, int b, int grey, int width,
                  const float *bokeh_row, const float *defocus_row, float eta, float tau,
                  uint8_t *out);

/* The median of n float32 values as np.median computes it (the mean of the two middle
 * values for even n, in float32). Reorders `values`. */
float bk_median_f32(float *values, size_t n);

/* runtime/depth.py: centre_focus (the median over the centred box `fraction` of each side)
 * and focus_at (the median of the window x window pixels around column x, row y, cut at the
 * edges) on an (h, w) disparity map. */
float bk_centre_focus(const float *disparity, int h, int w, double fraction);
float bk_focus_at(const float *disparity, int h, int w, int x, int y, int window);
/* The rows [*top, *bottom) and columns [*left, *right) that bk_focus_at takes its median over. */
void bk_focus_window(int h, int w, int x, int y, int window, int *top, int *left, int *bottom, int *right);

/* runtime/depth.py to_disparity on integer samples: min-max to [0, 1] (constant: 0.5).
 * Returns 1 when the map is constant, else 0. */
int bk_to_disparity_u16(const uint16_t *values, size_t n, float *out);

/* runtime/depth.py fit_disparity: a disparity map (mh x mw, float32 in [0, 1]) -> the photo's
 * h x w, resized as R2 says and clipped to [0, 1]. Returns -1 when out of memory, else
 * BK_ASPECT_SAME, or BK_ASPECT_STRETCHED when the aspect ratios differ by more than
 * `tolerance`, plus BK_ASPECT_ROTATED when the map's would fit rotated by a quarter turn. */
enum { BK_ASPECT_SAME = 0, BK_ASPECT_STRETCHED = 1, BK_ASPECT_ROTATED = 2 };
int bk_fit_disparity(const float *map, int mh, int mw, float *out, int h, int w, double tolerance);

#endif
