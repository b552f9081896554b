/* The host steps (src/host.c) against the golden vectors the Python reference computed
 * (tests/golden_vectors.py -> tests/fixtures/golden/host_steps.json; docs/contract.md).
 *
 *     bokeh-host-golden host_steps.json FUNCTION      # letterbox, resize_u8, ..., fit_disparity
 *
 * Runs every case of one function, prints one line per case with its largest difference,
 * and exits 1 when any case is off by more than the tolerance the file states for it
 * (2 on a bad file or function name). ctest runs it once per function. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

static const cJSON *item(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }
static int num_i(const cJSON *o, const char *key) { return (int)item(o, key)->valuedouble; }
static double num(const cJSON *o, const char *key) { return item(o, key)->valuedouble; }
static int at(const cJSON *o, const char *key, int i) { return (int)cJSON_GetArrayItem(item(o, key), i)->valuedouble; }

/* A JSON number list as float32, uint8 or uint16 (freed by the caller). */
static float *floats(const cJSON *list) {
    int n = cJSON_GetArraySize(list);
    float *v = malloc(sizeof(float) * (n ? n : 1));
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, list) v[k++] = (float)e->valuedouble;
    return v;
}
static uint8_t *bytes(const cJSON *list) {
    int n = cJSON_GetArraySize(list);
    uint8_t *v = malloc(n ? n : 1);
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, list) v[k++] = (uint8_t)e->valuedouble;
    return v;
}

typedef struct {
    double tolerance, worst;
    int failed, cases;
    const char *function;
} check;

/* Compare n results with the expected list; record the case. */
static void compare_f(check *c, int index, const float *got, const cJSON *expected, int n) {
    double worst = 0;
    int bad = cJSON_GetArraySize(expected) != n;
    for (int i = 0; i < n && !bad; i++) {
        double d = fabs((double)got[i] - (float)cJSON_GetArrayItem(expected, i)->valuedouble);
        if (!(d <= worst)) worst = d;               /* NaN counts as the worst */
    }
    bad = bad || !(worst <= c->tolerance);
    printf("%s case %d: %d values, largest difference %g%s\n", c->function, index, n, worst, bad ? "  FAIL" : "");
    c->failed += bad;
    c->cases++;
    if (worst > c->worst) c->worst = worst;
}

static void compare_u8(check *c, int index, const uint8_t *got, const cJSON *expected, int n) {
    float *f = malloc(sizeof(float) * (n ? n : 1));
    for (int i = 0; i < n; i++) f[i] = got[i];
    compare_f(c, index, f, expected, n);
    free(f);
}

static void box_of(const cJSON *k, const char *photo, const char *model, bk_letterbox *box) {
    bk_letterbox_fit(at(k, photo, 0), at(k, photo, 1), at(k, model, 0), at(k, model, 1), box);
}

static void run_case(check *c, const cJSON *k, int index, const cJSON *maps) {
    const char *f = c->function;
    if (!strcmp(f, "letterbox")) {              /* R1: the box, and the aperture's scale */
        bk_letterbox box;
        box_of(k, "photo", "model", &box);
        const cJSON *pairs = item(k, "aperture");
        int n = 5 + cJSON_GetArraySize(pairs);
        float got[16], want[16];
        int g[4] = {box.top, box.left, box.height, box.width};
        const char *keys[4] = {"top", "left", "height", "width"};
        for (int i = 0; i < 4; i++) {
            got[i] = (float)g[i];
            want[i] = (float)num(k, keys[i]);
        }
        got[4] = (float)bk_letterbox_scale(&box);
        want[4] = (float)num(k, "scale");
        for (int i = 5; i < n; i++) {
            const cJSON *pair = cJSON_GetArrayItem(pairs, i - 5);
            got[i] = (float)(cJSON_GetArrayItem(pair, 0)->valuedouble * bk_letterbox_scale(&box));
            want[i] = (float)cJSON_GetArrayItem(pair, 1)->valuedouble;
        }
        cJSON *expected = cJSON_CreateFloatArray(want, n);
        compare_f(c, index, got, expected, n);
        cJSON_Delete(expected);
    } else if (!strcmp(f, "resize_u8") || !strcmp(f, "resize_f32")) {     /* R2 */
        int sh = at(k, "src", 0), sw = at(k, "src", 1), cn = at(k, "src", 2), dh = at(k, "dst", 0), dw = at(k, "dst", 1);
        int n = dh * dw * cn;
        if (!strcmp(f, "resize_u8")) {
            uint8_t *in = bytes(item(k, "input")), *out = malloc(n);
            bk_resize_u8(in, sh, sw, (size_t)sw * cn, cn, out, dh, dw, 2);
            compare_u8(c, index, out, item(k, "output"), n);
            free(in);
            free(out);
        } else {
            float *in = floats(item(k, "input")), *out = malloc(sizeof(float) * n);
            bk_resize_f32(in, sh, sw, (size_t)sw * cn, cn, out, dh, dw);
            compare_f(c, index, out, item(k, "output"), n);
            free(in);
            free(out);
        }
    } else if (!strcmp(f, "fit_photo") || !strcmp(f, "fit_map") || !strcmp(f, "fit_image_f32")) {   /* R3, R4 */
        bk_letterbox box;
        box_of(k, "photo", "model", &box);
        int channels = !strcmp(f, "fit_map") ? 1 : 3, n = box.model_h * box.model_w * channels;
        float *out = malloc(sizeof(float) * n);
        if (!strcmp(f, "fit_photo")) {
            uint8_t *in = bytes(item(k, "input"));
            bk_fit_photo(in, at(k, "photo", 2), &box, out, 2);
            free(in);
        } else {
            float *in = floats(item(k, "input"));
            if (!strcmp(f, "fit_map")) bk_fit_map(in, &box, out);
            else bk_fit_image_f32(in, &box, out);
            free(in);
        }
        compare_f(c, index, out, item(k, "output"), n);
        free(out);
    } else if (!strcmp(f, "sample")) {          /* R5 */
        bk_letterbox box;
        box_of(k, "photo", "model", &box);
        int th = at(k, "tensor", 0), tw = at(k, "tensor", 1), cn = at(k, "tensor", 2);
        bk_sampler s;
        bk_sampler_init(&s, &box, th, tw);
        float *tensor = floats(item(k, "input")), *out = malloc(sizeof(float) * box.photo_h * box.photo_w * cn);
        for (int y = 0; y < box.photo_h; y++) bk_sample_row(&s, tensor, cn, y, out + (size_t)y * box.photo_w * cn);
        compare_f(c, index, out, item(k, "output"), box.photo_h * box.photo_w * cn);
        bk_sampler_free(&s);
        free(tensor);
        free(out);
    } else if (!strcmp(f, "blend")) {           /* R6: Eq. 9 on one row; the fourth byte (alpha) untouched */
        int w = num_i(k, "width"), step = num_i(k, "step"), grey = cJSON_IsTrue(item(k, "grey"));
        uint8_t *px = bytes(item(k, "pixels")), *out = bytes(item(k, "pixels"));
        float *bokeh = floats(item(k, "bokeh")), *defocus = floats(item(k, "defocus"));
        bk_blend_row(px, step, 0, grey ? 0 : 1, grey ? 0 : 2, grey, w, bokeh, defocus, (float)num(k, "eta"),
                     (float)num(k, "tau"), out);
        compare_u8(c, index, out, item(k, "output"), w * step);
        free(px);
        free(out);
        free(bokeh);
        free(defocus);
    } else if (!strcmp(f, "median")) {          /* R8's median: np.median in float32 */
        const cJSON *in = item(k, "input");
        float *v = floats(in), got = bk_median_f32(v, (size_t)cJSON_GetArraySize(in));
        cJSON *expected = cJSON_CreateFloatArray((float[]){(float)num(k, "output")}, 1);
        compare_f(c, index, &got, expected, 1);
        cJSON_Delete(expected);
        free(v);
    } else if (!strcmp(f, "centre_focus") || !strcmp(f, "focus_at")) {   /* R8, R9 */
        const cJSON *map = item(maps, item(k, "map")->valuestring);
        int h = at(map, "shape", 0), w = at(map, "shape", 1);
        float *d = floats(item(map, "values"));
        float got = !strcmp(f, "centre_focus") ? bk_centre_focus(d, h, w, num(k, "fraction"))
                                               : bk_focus_at(d, h, w, num_i(k, "x"), num_i(k, "y"), num_i(k, "window"));
        cJSON *expected = cJSON_CreateFloatArray((float[]){(float)num(k, "output")}, 1);
        compare_f(c, index, &got, expected, 1);
        cJSON_Delete(expected);
        free(d);
    } else if (!strcmp(f, "to_disparity")) {    /* R7, and whether the map was constant */
        const cJSON *in = item(k, "input");
        int n = cJSON_GetArraySize(in);
        uint16_t *raw = malloc(sizeof(uint16_t) * n);
        for (int i = 0; i < n; i++) raw[i] = (uint16_t)cJSON_GetArrayItem(in, i)->valuedouble;
        float *out = malloc(sizeof(float) * (n + 1));
        out[n] = (float)bk_to_disparity_u16(raw, (size_t)n, out);
        cJSON *expected = cJSON_Duplicate(item(k, "output"), 1);
        cJSON_AddItemToArray(expected, cJSON_CreateNumber(cJSON_IsTrue(item(k, "constant"))));
        compare_f(c, index, out, expected, n + 1);
        cJSON_Delete(expected);
        free(raw);
        free(out);
    } else if (!strcmp(f, "fit_disparity")) {   /* R10, and whether it warns of a stretch or a rotation */
        int mh = at(k, "map", 0), mw = at(k, "map", 1), h = at(k, "photo", 0), w = at(k, "photo", 1);
        float *map = floats(item(k, "input")), *out = malloc(sizeof(float) * (h * w + 2));
        int aspect = bk_fit_disparity(map, mh, mw, out, h, w, 0.01);
        out[h * w] = (float)((aspect & BK_ASPECT_STRETCHED) != 0);
        out[h * w + 1] = (float)((aspect & BK_ASPECT_ROTATED) != 0);
        cJSON *expected = cJSON_Duplicate(item(k, "output"), 1);
        cJSON_AddItemToArray(expected, cJSON_CreateNumber(cJSON_IsTrue(item(k, "stretched"))));
        cJSON_AddItemToArray(expected, cJSON_CreateNumber(cJSON_IsTrue(item(k, "rotated"))));
        compare_f(c, index, out, expected, h * w + 2);
        cJSON_Delete(expected);
        free(map);
        free(out);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: bokeh-host-golden host_steps.json FUNCTION\n");
        return 2;
    }
    FILE *file = fopen(argv[1], "rb");
    if (!file) {
        fprintf(stderr, "bokeh-host-golden: %s: cannot open\n", argv[1]);
        return 2;
    }
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fseek(file, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    size_t got = fread(text, 1, (size_t)size, file);
    fclose(file);
    text[got] = 0;
    cJSON *doc = cJSON_Parse(text);
    free(text);
    const cJSON *cases = item(doc, "cases"), *list = item(cases, argv[2]);
    const cJSON *tolerance = item(item(doc, "tolerance"), argv[2]);
    if (!cJSON_IsArray(list) || !cJSON_IsNumber(tolerance)) {
        fprintf(stderr, "bokeh-host-golden: %s has no cases or tolerance for '%s'\n", argv[1], argv[2]);
        cJSON_Delete(doc);
        return 2;
    }
    check c = {tolerance->valuedouble, 0, 0, 0, argv[2]};
    int index = 0;
    const cJSON *k;
    cJSON_ArrayForEach(k, list) run_case(&c, k, index++, item(cases, "maps"));
    printf("%s: %d cases, %d failed, largest difference %g (tolerance %g)\n", c.function, c.cases, c.failed, c.worst,
           c.tolerance);
    cJSON_Delete(doc);
    return c.failed ? 1 : 0;
}
