/* libbokeh's handle API used wrongly, as an app might: each mode checks the statuses and
 * messages libbokeh gives, prints "ok" and exits 0, or says what went wrong and exits 1.
 *
 *     api_misuse failed-open MODEL     MODEL's sidecar does not match it: bokeh_open fails,
 *                                      then every call on the handle is refused
 *     api_misuse in-place MODEL        out == pixels: fine with the same stride, refused with
 *                                      another (and the photo left as it was)
 *     api_misuse focus-nan MODEL       bokeh_focus_at on NaN or out-of-range disparity
 *                                      (MODEL: a render-track model) */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bokeh.h"

static int errors;

#define CHECK(cond, ...)                                        \
    do {                                                        \
        if (!(cond)) {                                          \
            printf("FAILED line %d: ", __LINE__);              \
            printf(__VA_ARGS__);                                \
            printf("\n");                                       \
            errors++;                                           \
        }                                                       \
    } while (0)

static bokeh_pipeline *open_cpu(const char *path, bokeh_status *status) {
    bokeh_options o;
    bokeh_options_init(&o);
    o.accelerator = BOKEH_ACCELERATOR_CPU;
    o.threads = 1;
    bokeh_pipeline *p = NULL;
    *status = bokeh_open(path, &o, &p);
    return p;
}

static void fill(uint8_t *px, int w, int h, size_t stride, int step) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w * step; x++) px[(size_t)y * stride + x] = (uint8_t)(x * 7 + y * 13);
}

static void failed_open(const char *model) {
    bokeh_status s;
    bokeh_pipeline *p = open_cpu(model, &s);
    CHECK(p != NULL, "no handle after a failed open");
    if (!p) return;
    CHECK(s == BOKEH_ERROR_MODEL, "bokeh_open gave %d, expected 2 (%s)", s, bokeh_message(p));
    printf("open: %s\n", bokeh_message(p));
    enum { W = 48, H = 32 };
    static uint8_t px[W * H * 4], out[W * H * 4];
    static float disparity[W * H];
    static uint16_t samples[W * H];
    fill(px, W, H, W * 4, 4);
    for (int i = 0; i < W * H; i++) disparity[i] = 0.5f, samples[i] = (uint16_t)i;
    bokeh_info info;
    memset(&info, 0, sizeof info);
    s = bokeh_get_info(p, &info);
    CHECK(s == BOKEH_ERROR_ARGUMENT, "bokeh_get_info gave %d (track %p)", s, (const void *)info.track);
    CHECK(!strcmp(bokeh_message(p), "the pipeline is not open"), "bokeh_get_info: '%s'", bokeh_message(p));
    CHECK(bokeh_needs_depth(p) == 0, "bokeh_needs_depth said 1");
    s = bokeh_render(p, px, W, H, W * 4, BOKEH_FORMAT_RGBA8888, out, W * 4, NULL);
    CHECK(s == BOKEH_ERROR_ARGUMENT, "bokeh_render gave %d", s);
    CHECK(!strcmp(bokeh_message(p), "the pipeline is not open"), "bokeh_render: '%s'", bokeh_message(p));
    bokeh_depth depth = {disparity, NAN, NAN};
    s = bokeh_render(p, px, W, H, W * 4, BOKEH_FORMAT_RGBA8888, out, W * 4, &depth);
    CHECK(s == BOKEH_ERROR_ARGUMENT, "bokeh_render with depth gave %d", s);
    float focus = -1;
    s = bokeh_focus_at(p, disparity, W, H, 3, 3, &focus);
    CHECK(s == BOKEH_ERROR_ARGUMENT && focus == -1, "bokeh_focus_at gave %d (focus %g)", s, (double)focus);
    CHECK(!strcmp(bokeh_message(p), "the pipeline is not open"), "bokeh_focus_at: '%s'", bokeh_message(p));
    char warning[256] = "unset";
    s = bokeh_disparity_from_map(p, samples, W, H, W, H, disparity, warning, sizeof warning);
    CHECK(s == BOKEH_ERROR_ARGUMENT, "bokeh_disparity_from_map gave %d", s);
    CHECK(!strcmp(bokeh_message(p), "the pipeline is not open"), "bokeh_disparity_from_map: '%s'", bokeh_message(p));
    bokeh_close(p);
}

/* A pipeline that opened on the CPU, or NULL (after a failed CHECK) when it did not. */
static bokeh_pipeline *opened(const char *model) {
    bokeh_status s;
    bokeh_pipeline *p = open_cpu(model, &s);
    CHECK(s == BOKEH_OK, "open: %s", bokeh_message(p));
    if (s) {
        bokeh_close(p);
        return NULL;
    }
    return p;
}

static void in_place(const char *model) {
    bokeh_status s;
    bokeh_pipeline *p = opened(model);
    if (!p) return;
    enum { W = 64, H = 48, PAD = 16 };
    size_t stride = W * 4, wide = W * 4 + PAD;
    uint8_t *ref = malloc(stride * H), *a = malloc(stride * H), *b = malloc(wide * H), *b0 = malloc(wide * H);
    fill(a, W, H, stride, 4);
    s = bokeh_render(p, a, W, H, stride, BOKEH_FORMAT_RGBA8888, ref, stride, NULL);
    CHECK(s == BOKEH_OK, "out-of-place render: %s", bokeh_message(p));
    /* In place with the same stride: the same pixels. */
    s = bokeh_render(p, a, W, H, stride, BOKEH_FORMAT_RGBA8888, a, stride, NULL);
    CHECK(s == BOKEH_OK, "in place, same stride: %d %s", s, bokeh_message(p));
    CHECK(!memcmp(a, ref, stride * H), "in place with the same stride changed the result");
    /* In place with another stride: refused, and the photo left alone. */
    fill(b, W, H, wide, 4);
    memcpy(b0, b, wide * H);
    s = bokeh_render(p, b, W, H, wide, BOKEH_FORMAT_RGBA8888, b, stride, NULL);
    CHECK(s == BOKEH_ERROR_ARGUMENT, "in place, photo stride %zu, out stride %zu: status %d", wide, stride, s);
    CHECK(strstr(bokeh_message(p), "stride") != NULL, "message '%s'", bokeh_message(p));
    int rows = 0;
    for (int y = 0; y < H; y++) rows += memcmp(b + y * wide, b0 + y * wide, stride) != 0;
    CHECK(rows == 0, "%d of %d rows changed by a refused render", rows, H);
    s = bokeh_render(p, b, W, H, stride, BOKEH_FORMAT_RGBA8888, b, wide, NULL);
    CHECK(s == BOKEH_ERROR_ARGUMENT, "in place, photo stride %zu, out stride %zu: status %d", stride, wide, s);
    /* The same in ints per row. */
    s = bokeh_render(p, b, W, H, W + PAD / 4, BOKEH_FORMAT_ARGB_INT, b, W, NULL);
    CHECK(s == BOKEH_ERROR_ARGUMENT, "ARGB_INT in place with another stride: status %d", s);
    /* Overlapping without being the same buffer is still refused. */
    s = bokeh_render(p, b, W, H, stride, BOKEH_FORMAT_RGBA8888, b + 4, stride, NULL);
    CHECK(s == BOKEH_ERROR_ARGUMENT, "overlapping out: status %d", s);
    free(ref), free(a), free(b), free(b0);
    bokeh_close(p);
}

static void focus_nan(const char *model) {
    bokeh_status s;
    bokeh_pipeline *p = opened(model);
    if (!p) return;
    CHECK(bokeh_needs_depth(p) == 1, "not a render-track model");
    enum { W = 40, H = 30 };
    static float d[W * H];
    for (int i = 0; i < W * H; i++) d[i] = 0.5f;
    float focus = -1;
    s = bokeh_focus_at(p, d, W, H, 10, 10, &focus);
    CHECK(s == BOKEH_OK && focus == 0.5f, "plain map: status %d focus %g", s, (double)focus);
    const float bad[] = {NAN, 1.5f, -0.25f, INFINITY};
    for (int i = 0; i < 4; i++) {
        for (int k = 0; k < W * H; k++) d[k] = 0.5f;
        d[10 * W + 11] = bad[i];                        /* inside the 9 x 9 window around 10,10 */
        focus = -1;
        s = bokeh_focus_at(p, d, W, H, 10, 10, &focus);
        CHECK(s == BOKEH_ERROR_DEPTH, "disparity %g in the window: status %d, focus %g", (double)bad[i], s,
              (double)focus);
        CHECK(strstr(bokeh_message(p), "disparity") != NULL, "message '%s'", bokeh_message(p));
    }
    for (int k = 0; k < W * H; k++) d[k] = NAN;           /* all NaN: the render then used the centre */
    s = bokeh_focus_at(p, d, W, H, 0, 0, &focus);
    CHECK(s == BOKEH_ERROR_DEPTH, "an all-NaN map: status %d, focus %g", s, (double)focus);
    bokeh_close(p);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: api_misuse failed-open|in-place|focus-nan MODEL\n");
        return 2;
    }
    if (!strcmp(argv[1], "failed-open")) failed_open(argv[2]);
    else if (!strcmp(argv[1], "in-place")) in_place(argv[2]);
    else if (!strcmp(argv[1], "focus-nan")) focus_nan(argv[2]);
    else return 2;
    if (errors) return 1;
    printf("ok\n");
    return 0;
}
