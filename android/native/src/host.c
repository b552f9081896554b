/* Host steps of the contract; see host.h and docs/contract.md (rules R1-R10).
 *
 * The Python runtime resizes with OpenCV, so the rules here are OpenCV's, written out:
 * INTER_AREA (with its integer-factor fast path), INTER_LINEAR (fixed point for 8-bit
 * samples), BORDER_REFLECT_101, and cv2.remap's bilinear sampling (OpenCV 5: at the exact
 * position). Float operations follow numpy's float32 order where it matters. The golden
 * vectors (tests/fixtures/golden) hold each function to the pinned OpenCV. */
#include "host.h"

#include <float.h>
#include <pthread.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RESIZE_COEF_BITS 11
#define RESIZE_COEF_SCALE (1 << RESIZE_COEF_BITS)

void bk_letterbox_fit(int photo_h, int photo_w, int model_h, int model_w, bk_letterbox *box) {
    double scale = fmin((double)model_h / photo_h, (double)model_w / photo_w);
    /* Python's round() is half-to-even, as nearbyint is in the default rounding mode. */
    int height = (int)nearbyint(photo_h * scale), width = (int)nearbyint(photo_w * scale);
    height = height < 1 ? 1 : height > model_h ? model_h : height;
    width = width < 1 ? 1 : width > model_w ? model_w : width;
    box->photo_h = photo_h;
    box->photo_w = photo_w;
    box->model_h = model_h;
    box->model_w = model_w;
    box->height = height;
    box->width = width;
    box->top = (model_h - height) / 2;
    box->left = (model_w - width) / 2;
}

double bk_letterbox_scale(const bk_letterbox *box) {
    return fmin((double)box->model_h / box->photo_h, (double)box->model_w / box->photo_w);
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static uint8_t round_u8(float v) {
    /* saturate_cast<uchar>(float): round half to even, then clamp. */
    long r = lrintf(v);
    return (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
}

/* ---- INTER_AREA ------------------------------------------------------------------------- */

typedef struct { int di, si; float alpha; } area_tab;

/* computeResizeAreaTab: each destination cell's source pixels and their weights. */
static int area_table(int ssize, int dsize, double scale, area_tab *tab) {
    int k = 0;
    for (int dx = 0; dx < dsize; dx++) {
        double fsx1 = dx * scale, fsx2 = fsx1 + scale;
        double cell = fmin(scale, ssize - fsx1);
        int sx1 = (int)ceil(fsx1), sx2 = (int)floor(fsx2);
        sx2 = sx2 < ssize - 1 ? sx2 : ssize - 1;
        sx1 = sx1 < sx2 ? sx1 : sx2;
        if (sx1 - fsx1 > 1e-3)
            tab[k++] = (area_tab){dx, sx1 - 1, (float)((sx1 - fsx1) / cell)};
        for (int sx = sx1; sx < sx2; sx++)
            tab[k++] = (area_tab){dx, sx, (float)(1.0 / cell)};
        if (fsx2 - sx2 > 1e-3)
            tab[k++] = (area_tab){dx, sx2, (float)(fmin(fmin(fsx2 - sx2, 1.0), cell) / cell)};
    }
    return k;
}

/* Destination rows [dy0, dy1) only: each range recomputes its rows from scratch, as
 * OpenCV's parallel invoker does, so splitting the rows between threads changes nothing. */
#define AREA_GENERAL(NAME, T, STORE)                                                           \
    static int NAME(const T *src, int sh, int sw, size_t sstride, int cn, T *dst, int dh,      \
                    int dw, int dy0, int dy1) {                                                \
        double scale_x = 1.0 / ((double)dw / sw), scale_y = 1.0 / ((double)dh / sh);           \
        area_tab *xtab = malloc(sizeof(area_tab) * (size_t)(sw * 2 + 2));                      \
        area_tab *ytab = malloc(sizeof(area_tab) * (size_t)(sh * 2 + 2));                      \
        float *buf = malloc(sizeof(float) * (size_t)dw * cn);                                  \
        float *sum = calloc((size_t)dw * cn, sizeof(float));                                   \
        if (!xtab || !ytab || !buf || !sum) {                                                  \
            free(xtab); free(ytab); free(buf); free(sum);                                      \
            return -1;                                                                         \
        }                                                                                      \
        int nx = area_table(sw, dw, scale_x, xtab), ny = area_table(sh, dh, scale_y, ytab);    \
        int j0 = 0;                                                                            \
        while (j0 < ny && ytab[j0].di < dy0) j0++;                                             \
        int prev = dy0, n = dw * cn;                                                           \
        for (int j = j0; j < ny && ytab[j].di < dy1; j++) {                                    \
            float beta = ytab[j].alpha;                                                        \
            int dy = ytab[j].di;                                                               \
            const T *s = src + (size_t)ytab[j].si * sstride;                                   \
            memset(buf, 0, sizeof(float) * (size_t)n);                                         \
            for (int k = 0; k < nx; k++) {                                                     \
                int d = xtab[k].di * cn, si = xtab[k].si * cn;                                 \
                float a = xtab[k].alpha;                                                       \
                for (int c = 0; c < cn; c++) buf[d + c] += (float)s[si + c] * a;               \
            }                                                                                  \
            if (dy != prev) {                                                                  \
                T *d = dst + (size_t)prev * dw * cn;                                           \
                for (int x = 0; x < n; x++) {                                                  \
                    d[x] = STORE(sum[x]);                                                      \
                    sum[x] = beta * buf[x];                                                    \
                }                                                                              \
                prev = dy;                                                                     \
            } else {                                                                           \
                for (int x = 0; x < n; x++) sum[x] += beta * buf[x];                           \
            }                                                                                  \
        }                                                                                      \
        T *d = dst + (size_t)prev * dw * cn;                                                   \
        for (int x = 0; x < n; x++) d[x] = STORE(sum[x]);                                      \
        free(xtab); free(ytab); free(buf); free(sum);                                          \
        return 0;                                                                              \
    }

#define STORE_U8(v) round_u8(v)
#define STORE_F32(v) (v)
AREA_GENERAL(area_u8, uint8_t, STORE_U8)
AREA_GENERAL(area_f32, float, STORE_F32)

/* Integer factors: the mean of each factor_y x factor_x cell. For 2x2 8-bit cells OpenCV
 * rounds (sum + 2) >> 2, otherwise sum * (1.f / area) rounded half to even. */
static void area_fast_u8(const uint8_t *src, size_t sstride, int cn, uint8_t *dst, int dh, int dw,
                         int fx, int fy) {
    float scale = 1.f / (float)(fx * fy);
    for (int y = 0; y < dh; y++) {
        uint8_t *d = dst + (size_t)y * dw * cn;
        for (int x = 0; x < dw; x++) {
            for (int c = 0; c < cn; c++) {
                int sum = 0;
                for (int j = 0; j < fy; j++) {
                    const uint8_t *s = src + (size_t)(y * fy + j) * sstride + (size_t)x * fx * cn + c;
                    for (int i = 0; i < fx; i++) sum += s[i * cn];
                }
                d[x * cn + c] = (fx == 2 && fy == 2 && cn != 2) ? (uint8_t)((sum + 2) >> 2)
                                                                 : round_u8((float)sum * scale);
            }
        }
    }
}

static void area_fast_f32(const float *src, size_t sstride, int cn, float *dst, int dh, int dw,
                          int fx, int fy) {
    float scale = 1.f / (float)(fx * fy);
    for (int y = 0; y < dh; y++) {
        float *d = dst + (size_t)y * dw * cn;
        for (int x = 0; x < dw; x++) {
            for (int c = 0; c < cn; c++) {
                float sum = 0.f;
                for (int j = 0; j < fy; j++) {
                    const float *s = src + (size_t)(y * fy + j) * sstride + (size_t)x * fx * cn + c;
                    for (int i = 0; i < fx; i++) sum += s[i * cn];
                }
                d[x * cn + c] = sum * scale;
            }
        }
    }
}

/* ---- INTER_LINEAR ----------------------------------------------------------------------- */

/* Source index and weight of each destination coordinate, half-pixel centres. Columns are
 * clamped at the edges (weight 0 past the last pixel); rows are not: a row above the top
 * reads row 0 twice, as OpenCV's vertical pass does. OpenCV computes the position in
 * float32 for 8-bit images and in float64 for float32 ones. */
static void linear_coeffs(int ssize, int dsize, int in_double, int clamp, int *ofs, float *frac) {
    double scale = 1.0 / ((double)dsize / ssize);
    for (int d = 0; d < dsize; d++) {
        int s;
        float f;
        if (in_double) {
            double fd = (d + 0.5) * scale - 0.5;
            s = (int)floor(fd);
            f = (float)(fd - s);
        } else {
            f = (float)((d + 0.5) * scale - 0.5);
            s = (int)floorf(f);
            f -= (float)s;
        }
        if (clamp && s < 0) {
            f = 0.f;
            s = 0;
        }
        if (clamp && s >= ssize - 1) {
            f = 0.f;
            s = ssize - 1;
        }
        ofs[d] = s;
        frac[d] = f;
    }
}

static short coef_fixed(float v) { return (short)lrintf(v * RESIZE_COEF_SCALE); }

static int linear_u8(const uint8_t *src, int sh, int sw, size_t sstride, int cn, uint8_t *dst,
                     int dh, int dw) {
    int *xo = malloc(sizeof(int) * dw), *yo = malloc(sizeof(int) * dh);
    float *xf = malloc(sizeof(float) * dw), *yf = malloc(sizeof(float) * dh);
    int *r0 = malloc(sizeof(int) * (size_t)dw * cn), *r1 = malloc(sizeof(int) * (size_t)dw * cn);
    if (!xo || !yo || !xf || !yf || !r0 || !r1) {
        free(xo); free(yo); free(xf); free(yf); free(r0); free(r1);
        return -1;
    }
    linear_coeffs(sw, dw, 0, 1, xo, xf);
    linear_coeffs(sh, dh, 0, 0, yo, yf);
    for (int y = 0; y < dh; y++) {
        int sy0 = clampi(yo[y], 0, sh - 1), sy1 = clampi(yo[y] + 1, 0, sh - 1);
        short b0 = coef_fixed(1.f - yf[y]), b1 = coef_fixed(yf[y]);
        for (int row = 0; row < 2; row++) {
            const uint8_t *s = src + (size_t)(row ? sy1 : sy0) * sstride;
            int *r = row ? r1 : r0;
            for (int x = 0; x < dw; x++) {
                int sx = xo[x];
                short a0 = coef_fixed(1.f - xf[x]), a1 = coef_fixed(xf[x]);
                int sx1 = sx + 1 < sw ? sx + 1 : sx;   /* weight a1 is 0 there */
                for (int c = 0; c < cn; c++)
                    r[x * cn + c] = s[sx * cn + c] * a0 + s[sx1 * cn + c] * a1;
            }
        }
        uint8_t *d = dst + (size_t)y * dw * cn;
        /* OpenCV's SIMD vertical pass (VResizeLinearVec_32s8u), which every x86 build
         * runs: rows >> 4, products' high 16 bits, + 2, >> 2. */
        for (int x = 0; x < dw * cn; x++) {
            int v = (((r0[x] >> 4) * b0) >> 16) + (((r1[x] >> 4) * b1) >> 16);
            v = (v + 2) >> 2;
            d[x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    free(xo); free(yo); free(xf); free(yf); free(r0); free(r1);
    return 0;
}

static int linear_f32(const float *src, int sh, int sw, size_t sstride, int cn, float *dst, int dh,
                      int dw) {
    int *xo = malloc(sizeof(int) * dw), *yo = malloc(sizeof(int) * dh);
    float *xf = malloc(sizeof(float) * dw), *yf = malloc(sizeof(float) * dh);
    float *r0 = malloc(sizeof(float) * (size_t)dw * cn), *r1 = malloc(sizeof(float) * (size_t)dw * cn);
    if (!xo || !yo || !xf || !yf || !r0 || !r1) {
        free(xo); free(yo); free(xf); free(yf); free(r0); free(r1);
        return -1;
    }
    linear_coeffs(sw, dw, 1, 1, xo, xf);
    linear_coeffs(sh, dh, 1, 0, yo, yf);
    for (int y = 0; y < dh; y++) {
        int sy0 = clampi(yo[y], 0, sh - 1), sy1 = clampi(yo[y] + 1, 0, sh - 1);
        float b0 = 1.f - yf[y], b1 = yf[y];
        for (int row = 0; row < 2; row++) {
            const float *s = src + (size_t)(row ? sy1 : sy0) * sstride;
            float *r = row ? r1 : r0;
            for (int x = 0; x < dw; x++) {
                int sx = xo[x], sx1 = sx + 1 < sw ? sx + 1 : sx;
                float a0 = 1.f - xf[x], a1 = xf[x];
                for (int c = 0; c < cn; c++) r[x * cn + c] = s[sx * cn + c] * a0 + s[sx1 * cn + c] * a1;
            }
        }
        float *d = dst + (size_t)y * dw * cn;
        for (int x = 0; x < dw * cn; x++) d[x] = r0[x] * b0 + r1[x] * b1;
    }
    free(xo); free(yo); free(xf); free(yf); free(r0); free(r1);
    return 0;
}

/* cv::resize's choice of path: same size copies; a factor of exactly 2 on both axes is
 * the area mean even for INTER_LINEAR; integer factors take the fast area path. */
static int area_fast_factors(int sh, int sw, int dh, int dw, int *fx, int *fy) {
    double sx = 1.0 / ((double)dw / sw), sy = 1.0 / ((double)dh / sh);
    int ix = (int)lrint(sx), iy = (int)lrint(sy);
    *fx = ix;
    *fy = iy;
    return fabs(sx - ix) < DBL_EPSILON && fabs(sy - iy) < DBL_EPSILON;
}

typedef struct {
    bk_rows_fn fn;
    void *ctx;
    int r0, r1;
} rows_job;

static void *rows_thread(void *arg) {
    rows_job *j = arg;
    j->fn(j->ctx, j->r0, j->r1);
    return NULL;
}

void bk_parallel_rows(int threads, int rows, bk_rows_fn fn, void *ctx) {
    enum { MAX_THREADS = 16 };
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > rows / 16) threads = rows / 16;      /* not worth a thread for a few rows */
    if (threads <= 1) {
        fn(ctx, 0, rows);
        return;
    }
    pthread_t tid[MAX_THREADS];
    rows_job jobs[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 0; t < threads; t++) {
        jobs[t] = (rows_job){fn, ctx, (int)((long long)rows * t / threads), (int)((long long)rows * (t + 1) / threads)};
        /* The caller's thread takes the last range; a thread that cannot start runs inline. */
        if (t < threads - 1) started[t] = pthread_create(&tid[t], NULL, rows_thread, &jobs[t]) == 0;
    }
    for (int t = 0; t < threads; t++)
        if (!started[t]) rows_thread(&jobs[t]);
    for (int t = 0; t < threads - 1; t++)
        if (started[t]) pthread_join(tid[t], NULL);
}

typedef struct {
    const uint8_t *src;
    int sh, sw, cn, dh, dw;
    size_t sstride;
    uint8_t *dst;
    _Atomic int failed;
} area_job;

static void area_rows(void *arg, int r0, int r1) {
    area_job *j = arg;
    if (area_u8(j->src, j->sh, j->sw, j->sstride, j->cn, j->dst, j->dh, j->dw, r0, r1)) j->failed = 1;
}

int bk_resize_u8(const uint8_t *src, int sh, int sw, size_t sstride, int cn, uint8_t *dst, int dh,
                 int dw, int threads) {
    if (sh == dh && sw == dw) {
        for (int y = 0; y < dh; y++) memcpy(dst + (size_t)y * dw * cn, src + (size_t)y * sstride, (size_t)dw * cn);
        return 0;
    }
    int fx, fy, fast = area_fast_factors(sh, sw, dh, dw, &fx, &fy);
    int area = dh <= sh && dw <= sw;
    if (fast && fx == 2 && fy == 2) area = 1;
    if (area) {
        if (fast) {
            area_fast_u8(src, sstride, cn, dst, dh, dw, fx, fy);
            return 0;
        }
        area_job job = {src, sh, sw, cn, dh, dw, sstride, dst, 0};
        bk_parallel_rows(threads, dh, area_rows, &job);
        return job.failed ? -1 : 0;
    }
    return linear_u8(src, sh, sw, sstride, cn, dst, dh, dw);
}

int bk_resize_f32(const float *src, int sh, int sw, size_t sstride, int cn, float *dst, int dh,
                  int dw) {
    if (sh == dh && sw == dw) {
        for (int y = 0; y < dh; y++)
            memcpy(dst + (size_t)y * dw * cn, src + (size_t)y * sstride, sizeof(float) * dw * cn);
        return 0;
    }
    int fx, fy, fast = area_fast_factors(sh, sw, dh, dw, &fx, &fy);
    int area = dh <= sh && dw <= sw;
    if (fast && fx == 2 && fy == 2) area = 1;
    if (area) {
        if (fast) {
            area_fast_f32(src, sstride, cn, dst, dh, dw, fx, fy);
            return 0;
        }
        return area_f32(src, sh, sw, sstride, cn, dst, dh, dw, 0, dh);
    }
    return linear_f32(src, sh, sw, sstride, cn, dst, dh, dw);
}

/* ---- letterbox -------------------------------------------------------------------------- */

int bk_reflect101(int p, int len) {
    if (len == 1) return 0;
    while (p < 0 || p >= len) p = p < 0 ? -p : 2 * (len - 1) - p;
    return p;
}

int bk_fit_photo(const uint8_t *rgb, int cn, const bk_letterbox *b, float *out, int threads) {
    uint8_t *small = malloc((size_t)b->height * b->width * cn);
    if (!small) return -1;
    if (bk_resize_u8(rgb, b->photo_h, b->photo_w, (size_t)b->photo_w * cn, cn, small, b->height, b->width, threads)) {
        free(small);
        return -1;
    }
    const float inv = (float)(1.0 / 255.0);   /* np.float32(1.0 / scale) */
    for (int y = 0; y < b->model_h; y++) {
        const uint8_t *row = small + (size_t)bk_reflect101(y - b->top, b->height) * b->width * cn;
        float *o = out + (size_t)y * b->model_w * 3;
        for (int x = 0; x < b->model_w; x++) {
            const uint8_t *p = row + (size_t)bk_reflect101(x - b->left, b->width) * cn;
            for (int c = 0; c < 3; c++) {
                float v = (float)p[cn == 1 ? 0 : c] * inv;
                o[x * 3 + c] = v < 0.f ? 0.f : v > 1.f ? 1.f : v;
            }
        }
    }
    free(small);
    return 0;
}

int bk_fit_map(const float *map, const bk_letterbox *b, float *out) {
    float *small = malloc(sizeof(float) * (size_t)b->height * b->width);
    if (!small) return -1;
    if (bk_resize_f32(map, b->photo_h, b->photo_w, (size_t)b->photo_w, 1, small, b->height, b->width)) {
        free(small);
        return -1;
    }
    for (int y = 0; y < b->model_h; y++) {
        const float *row = small + (size_t)bk_reflect101(y - b->top, b->height) * b->width;
        for (int x = 0; x < b->model_w; x++) {
            float v = row[bk_reflect101(x - b->left, b->width)];
            out[(size_t)y * b->model_w + x] = v < 0.f ? 0.f : v > 1.f ? 1.f : v;
        }
    }
    free(small);
    return 0;
}

int bk_fit_image_f32(const float *rgb, const bk_letterbox *b, float *out) {
    float *small = malloc(sizeof(float) * (size_t)b->height * b->width * 3);
    if (!small) return -1;
    if (bk_resize_f32(rgb, b->photo_h, b->photo_w, (size_t)b->photo_w * 3, 3, small, b->height, b->width)) {
        free(small);
        return -1;
    }
    for (int y = 0; y < b->model_h; y++) {
        const float *row = small + (size_t)bk_reflect101(y - b->top, b->height) * b->width * 3;
        float *o = out + (size_t)y * b->model_w * 3;
        for (int x = 0; x < b->model_w; x++) {
            const float *p = row + (size_t)bk_reflect101(x - b->left, b->width) * 3;
            for (int c = 0; c < 3; c++) o[x * 3 + c] = p[c] < 0.f ? 0.f : p[c] > 1.f ? 1.f : p[c];
        }
    }
    free(small);
    return 0;
}

/* ---- sampling outputs back (cv2.remap, INTER_LINEAR, BORDER_REPLICATE) ---------------- */

/* Photo pixel centre -> output coordinate, in float64 and then float32 as fit.py computes
 * it. OpenCV 5's cv2.remap with float maps interpolates at that exact position (OpenCV 4
 * rounded it to 1/32 pixel first: tests/fixtures/golden caught the change). */
static void sample_axis(int n, int offset, int inside, int photo, int tensor, int model, int *i0,
                        int *i1, float *frac) {
    for (int i = 0; i < n; i++) {
        float v = (float)(((offset + (i + 0.5) * inside / photo) * tensor) / model - 0.5);
        float p = floorf(v);
        frac[i] = v - p;
        i0[i] = clampi((int)p, 0, tensor - 1);
        i1[i] = clampi((int)p + 1, 0, tensor - 1);
    }
}

int bk_sampler_init(bk_sampler *s, const bk_letterbox *b, int th, int tw) {
    memset(s, 0, sizeof(*s));
    s->cols = b->photo_w;
    s->rows = b->photo_h;
    s->x0 = malloc(sizeof(int) * s->cols);
    s->x1 = malloc(sizeof(int) * s->cols);
    s->fx = malloc(sizeof(float) * s->cols);
    s->y0 = malloc(sizeof(int) * s->rows);
    s->y1 = malloc(sizeof(int) * s->rows);
    s->fy = malloc(sizeof(float) * s->rows);
    if (!s->x0 || !s->x1 || !s->fx || !s->y0 || !s->y1 || !s->fy) {
        bk_sampler_free(s);
        return -1;
    }
    sample_axis(s->cols, b->left, b->width, b->photo_w, tw, b->model_w, s->x0, s->x1, s->fx);
    sample_axis(s->rows, b->top, b->height, b->photo_h, th, b->model_h, s->y0, s->y1, s->fy);
    s->tensor_w = tw;
    return 0;
}

void bk_sampler_free(bk_sampler *s) {
    free(s->x0); free(s->x1); free(s->fx); free(s->y0); free(s->y1); free(s->fy);
    memset(s, 0, sizeof(*s));
}

void bk_sample_row(const bk_sampler *s, const float *t, int cn, int y, float *out) {
    size_t stride = (size_t)s->tensor_w * cn;
    const float *r0 = t + (size_t)s->y0[y] * stride, *r1 = t + (size_t)s->y1[y] * stride;
    float wy1 = s->fy[y], wy0 = 1.f - wy1;
    for (int x = 0; x < s->cols; x++) {
        float wx1 = s->fx[x], wx0 = 1.f - wx1;
        /* cv2.remap's float table: products of the 1-D weights, summed left to right. */
        float w0 = wy0 * wx0, w1 = wy0 * wx1, w2 = wy1 * wx0, w3 = wy1 * wx1;
        const float *a = r0 + (size_t)s->x0[x] * cn, *b = r0 + (size_t)s->x1[x] * cn;
        const float *c = r1 + (size_t)s->x0[x] * cn, *d = r1 + (size_t)s->x1[x] * cn;
        for (int ch = 0; ch < cn; ch++) out[x * cn + ch] = a[ch] * w0 + b[ch] * w1 + c[ch] * w2 + d[ch] * w3;
    }
}

void bk_blend_row(const uint8_t *px, int step, int r, int g, int b, int grey, int width,
                  const float *bokeh, const float *defocus, float eta, float tau, uint8_t *out) {
    const float inv = (float)(1.0 / 255.0);
    for (int x = 0; x < width; x++) {
        const uint8_t *p = px + (size_t)x * step;
        /* Eq. 9: M = sigmoid(eta * (tau - D)), clipped where float32 exp would overflow. */
        float z = eta * (tau - defocus[x]);
        z = z < -40.f ? -40.f : z > 40.f ? 40.f : z;
        float m = 1.f / (1.f + expf(-z)), n = 1.f - m;
        float rgb[3];
        int offsets[3] = {r, g, b};
        for (int c = 0; c < 3; c++) {
            float v = m * ((float)p[offsets[c]] * inv) + n * bokeh[x * 3 + c];
            rgb[c] = v < 0.f ? 0.f : v > 1.f ? 1.f : v;
        }
        uint8_t *o = out + (size_t)x * step;
        if (grey) {
            /* Rec. 601 luma, as blend.py's `result @ _LUMA`. */
            float luma = rgb[0] * 0.299f + rgb[1] * 0.587f + rgb[2] * 0.114f;
            o[r] = round_u8(luma * 255.f);
        } else {
            for (int c = 0; c < 3; c++) o[offsets[c]] = round_u8(rgb[c] * 255.f);
        }
    }
}

/* ---- medians, focus, disparity ---------------------------------------------------------- */

static float select_kth(float *v, size_t n, size_t k) {
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i <= j) {
                float t = v[i]; v[i] = v[j]; v[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return v[k];
    }
    return v[k];
}

float bk_median_f32(float *v, size_t n) {
    if (n == 0) return NAN;
    size_t h = n / 2;
    float upper = select_kth(v, n, h);
    if (n % 2) return upper;
    /* The lower middle value is the largest of the values left of position h. */
    float lower = v[0];
    for (size_t i = 1; i < h; i++) if (v[i] > lower) lower = v[i];
    return (lower + upper) / 2.f;
}

static float window_median(const float *d, int w, int top, int left, int bh, int bw) {
    float *tmp = malloc(sizeof(float) * (size_t)bh * bw);
    if (!tmp) return NAN;
    size_t k = 0;
    for (int y = top; y < top + bh; y++)
        for (int x = left; x < left + bw; x++) tmp[k++] = d[(size_t)y * w + x];
    float m = bk_median_f32(tmp, k);
    free(tmp);
    return m;
}

float bk_centre_focus(const float *d, int h, int w, double fraction) {
    int bh = (int)nearbyint(h * fraction), bw = (int)nearbyint(w * fraction);
    bh = bh < 1 ? 1 : bh;
    bw = bw < 1 ? 1 : bw;
    return window_median(d, w, (h - bh) / 2, (w - bw) / 2, bh, bw);
}

void bk_focus_window(int h, int w, int x, int y, int window, int *top, int *left, int *bottom, int *right) {
    int r = window / 2;
    *top = y - r < 0 ? 0 : y - r;
    *left = x - r < 0 ? 0 : x - r;
    *bottom = y + r + 1 > h ? h : y + r + 1;
    *right = x + r + 1 > w ? w : x + r + 1;
}

float bk_focus_at(const float *d, int h, int w, int x, int y, int window) {
    int top, left, bottom, right;
    bk_focus_window(h, w, x, y, window, &top, &left, &bottom, &right);
    return window_median(d, w, top, left, bottom - top, right - left);
}

int bk_to_disparity_u16(const uint16_t *values, size_t n, float *out) {
    uint16_t lo = 65535, hi = 0;
    for (size_t i = 0; i < n; i++) {
        if (values[i] < lo) lo = values[i];
        if (values[i] > hi) hi = values[i];
    }
    if (hi == lo) {
        for (size_t i = 0; i < n; i++) out[i] = 0.5f;
        return 1;   /* constant: one plane */
    }
    double range = (double)hi - lo;
    for (size_t i = 0; i < n; i++) out[i] = (float)(((double)values[i] - lo) / range);
    return 0;
}


int bk_fit_disparity(const float *map, int mh, int mw, float *out, int h, int w, double tolerance) {
    int aspect = BK_ASPECT_SAME;
    if (fabs(((double)mw / mh) / ((double)w / h) - 1.0) > tolerance) {
        aspect = BK_ASPECT_STRETCHED;
        if (fabs(((double)mh / mw) / ((double)w / h) - 1.0) <= tolerance) aspect |= BK_ASPECT_ROTATED;
    }
    size_t n = (size_t)w * h;
    if (mh == h && mw == w) {
        memcpy(out, map, sizeof(float) * n);
        return aspect;
    }
    if (bk_resize_f32(map, mh, mw, (size_t)mw, 1, out, h, w)) return -1;
    for (size_t i = 0; i < n; i++) out[i] = out[i] < 0.f ? 0.f : out[i] > 1.f ? 1.f : out[i];
    return aspect;
}
