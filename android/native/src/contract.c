/* Sidecar checks, and finding the portrait model in a folder; messages follow
 * runtime/sidecar.py's. */
#define _POSIX_C_SOURCE 200809L
#include "contract.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bokeh.h"
#include "sha256.h"

#define SIDECAR_FORMAT "bokehlite-tflite"
#define SIDECAR_VERSION 2   /* bokehlite/contract.py SIDECAR_VERSION: the version this reader reads */
/* The two-model pipeline sidecar of before the portrait model had its own track. */
#define OLD_PORTRAIT_FORMAT "bokehlite-portrait"
#define DEFAULT_PORTRAIT "bokeh_portrait_1024x1536.tflite"
#define SEGMENTER_FILE "bokeh_portrait_segmenter.tflite"   /* bokehlite/contract.py SEGMENTER_FILE */
/* bokehlite/contract.py CONTRACT_METADATA_KEY: the metadata buffer holding the embedded contract. */
#define CONTRACT_KEY "bokehlite_contract"
#define MAX_FILE (64 << 20)

static int fail(char *msg, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, n, fmt, ap);
    va_end(ap);
    return BOKEH_ERROR_MODEL;
}

/* The file's text, NUL-terminated, and its size; NULL with errno-style reason in `why`. */
static char *read_text(const char *path, const char **why, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        *why = "not found";
        return NULL;
    }
    char *buf = malloc(MAX_FILE + 1);
    size_t n = buf ? fread(buf, 1, MAX_FILE + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad || n > MAX_FILE) {
        free(buf);
        *why = !buf ? "out of memory" : bad ? "cannot read it" : "too large";
        return NULL;
    }
    buf[n] = 0;
    *size = n;
    return buf;
}

/* JSON text -> an object, refused as Python's json.loads refuses it: a UTF-8 byte order mark
 * is not JSON, and neither is nesting deeper than cJSON's limit. */
static cJSON *parse_object(const char *text, size_t size, const char *path, char *msg, size_t n, int *status,
                           const char *what) {
    if (size >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
        *status = fail(msg, n, "%s: %s is not valid JSON (it starts with a UTF-8 byte order mark)", path, what);
        return NULL;
    }
    cJSON *json = cJSON_ParseWithLength(text, size);
    if (!json) {
        *status = fail(msg, n, "%s: %s is not valid JSON", path, what);
        return NULL;
    }
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        *status = fail(msg, n, "%s: %s must be a JSON object", path, what);
        return NULL;
    }
    return json;
}

static cJSON *read_json(const char *path, char *msg, size_t n, int *status, const char *what) {
    const char *why = "";
    size_t size = 0;
    char *text = read_text(path, &why, &size);
    if (!text) {
        *status = !strcmp(why, "not found")
                      ? fail(msg, n, "%s: %s not found; export-tflite writes it next to the .tflite: copy both "
                                     "files together", path, what)
                      : fail(msg, n, "%s: cannot read the %s (%s)", path, what, why);
        return NULL;
    }
    cJSON *json = parse_object(text, size, path, msg, n, status, what);
    free(text);
    return json;
}

/* A .tflite alone: the contract export-tflite put inside it, as the metadata buffer
 * "bokehlite_contract" (the same JSON as its Model Metadata's associated file). NULL with
 * *status 0 when the model carries none; NULL with an error status when it is unreadable. */
static cJSON *embedded_json(LiteRtEnvironment env, const char *model, char *msg, size_t n, int *status) {
    LiteRtModel m = NULL;
    *status = 0;
    if (LiteRtCreateModelFromFile(env, model, &m) != kLiteRtStatusOk) {
        *status = fail(msg, n, "%s: not a readable TFLite model (LiteRT cannot parse it)", model);
        return NULL;
    }
    const void *data = NULL;
    size_t size = 0;
    cJSON *json = NULL;
    if (LiteRtGetModelMetadata(m, CONTRACT_KEY, &data, &size) == kLiteRtStatusOk && data)
        json = parse_object(data, size, model, msg, n, status, "embedded contract");
    LiteRtDestroyModel(m);
    return json;
}

static void sidecar_path(const char *model, char *out, size_t n) {
    /* Path.with_suffix(".json"): replace the extension of the last component. */
    snprintf(out, n, "%s", model);
    char *slash = strrchr(out, '/'), *dot = strrchr(out, '.');
    if (dot && (!slash || dot > slash + 1)) *dot = 0;
    strncat(out, ".json", n - strlen(out) - 1);
}

static int is_int(const cJSON *v) { return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble); }

/* A JSON list of positive ints into dims; its length, or -1. */
static int int_list(const cJSON *v, int *dims, int max) {
    if (!cJSON_IsArray(v)) return -1;
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (k >= max || !is_int(e) || e->valuedouble <= 0 || e->valuedouble > 1e9) return -1;
        dims[k++] = (int)e->valuedouble;
    }
    return k;
}

/* A JSON [lo, hi] of finite numbers with lo < hi. */
static int number_range(const cJSON *v, double *lo, double *hi) {
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !cJSON_IsNumber(cJSON_GetArrayItem(v, 0)) ||
        !cJSON_IsNumber(cJSON_GetArrayItem(v, 1)))
        return 0;
    *lo = cJSON_GetArrayItem(v, 0)->valuedouble;
    *hi = cJSON_GetArrayItem(v, 1)->valuedouble;
    return isfinite(*lo) && isfinite(*hi) && *lo < *hi;
}

/* A finite number in [lo, hi] under `key` of `obj`. */
static int number_in(const cJSON *obj, const char *key, double lo, double hi, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi) return 0;
    *out = v->valuedouble;
    return 1;
}

/* The sidecar's "host" block: the numbers of the host steps (docs/contract.md). */
static int check_host(const cJSON *j, const char *model, bk_contract *c, char *msg, size_t n) {
    const cJSON *host = cJSON_GetObjectItemCaseSensitive(j, "host");
    double window = 0;
    if (!cJSON_IsObject(host))
        return fail(msg, n, "%s: the sidecar has no 'host' block (the host steps' numbers); export it again", model);
    if (!number_in(host, "default_aperture", 0, INFINITY, &c->default_aperture))
        return fail(msg, n, "%s: host default_aperture must be a number >= 0", model);
    if (!number_in(host, "min_person", 0, 1, &c->min_person))
        return fail(msg, n, "%s: host min_person must be a number in [0, 1]", model);
    if (!number_in(host, "centre_box", 0, 1, &c->centre_box) || c->centre_box <= 0)
        return fail(msg, n, "%s: host centre_box must be a number in (0, 1]", model);
    if (!number_in(host, "ratio_tolerance", 0, INFINITY, &c->ratio_tolerance))
        return fail(msg, n, "%s: host ratio_tolerance must be a number >= 0", model);
    if (!number_in(host, "focus_window", 1, 1001, &window) || window != floor(window) || !fmod(window, 2))
        return fail(msg, n, "%s: host focus_window must be an odd integer from 1 to 1001", model);
    c->focus_window = (int)window;
    return 0;
}

static int string_is(const cJSON *v, const char *s) { return cJSON_IsString(v) && !strcmp(v->valuestring, s); }

/* What the host code relies on for each input (shape and colour); the numbers, such as the
 * aperture's range, come from the sidecar. */
typedef struct {
    const char *name;
    int channels;        /* 0: a [1, 1] scalar */
    const char *color;
} input_role;

static const input_role ROLES[] = {
    {"image", 3, "RGB"},
    {"disparity", 1, NULL},
    {"person", 1, NULL},      /* at the segmenter's output size, not the model's */
    {"focus", 0, NULL},
    {"aperture", 0, NULL},
};

static const input_role *role(const char *name) {
    for (size_t i = 0; i < sizeof ROLES / sizeof ROLES[0]; i++) if (!strcmp(ROLES[i].name, name)) return &ROLES[i];
    return NULL;
}

static int track_inputs(const char *track, const char ***names) {
    static const char *image[] = {"image"};
    static const char *render[] = {"image", "disparity", "focus", "aperture"};
    static const char *portrait[] = {"image", "person", "aperture"};
    if (!strcmp(track, "render")) {
        *names = render;
        return 4;
    }
    if (!strcmp(track, "portrait")) {
        *names = portrait;
        return 3;
    }
    *names = image;
    return 1;
}

/* The height and width an input has: the model's, or the segmenter output's for person. */
static void input_size(const bk_contract *c, const char *name, int *h, int *w) {
    int person = !strcmp(name, "person");
    *h = person ? c->person_height : c->height;
    *w = person ? c->person_width : c->width;
}

static void folder_of(const char *path, char *out, size_t n) {
    snprintf(out, n, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash) *slash = 0;
    else snprintf(out, n, ".");
}

/* A portrait sidecar's "segmenter": a bare file name beside the model with its sha256, and
 * its tensors, image [1, h, w, 3] in and person [1, h', w', 1] out. */
static int check_segmenter(const cJSON *j, const char *model, bk_contract *c, char *msg, size_t n) {
    const cJSON *seg = cJSON_GetObjectItemCaseSensitive(j, "segmenter");
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(seg, "file");
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(seg, "sha256");
    if (!cJSON_IsString(file) || !file->valuestring[0] || strchr(file->valuestring, '/') || !cJSON_IsString(sha))
        return fail(msg, n, "%s: the portrait sidecar has no segmenter file and sha256", model);
    char dir[sizeof c->segmenter];
    folder_of(model, dir, sizeof dir);
    snprintf(c->segmenter, sizeof c->segmenter, "%s/%s", dir, file->valuestring);
    struct stat st;
    char hex[65];
    if (stat(c->segmenter, &st) || !S_ISREG(st.st_mode))
        return fail(msg, n, "%s: its segmenter %s is missing; copy the whole export folder", model, file->valuestring);
    if (bk_sha256_file(c->segmenter, hex) || strcmp(hex, sha->valuestring))
        return fail(msg, n, "%s: %s is not the segmenter this model was exported with (sha256 mismatch)", model,
                    file->valuestring);
    int in[4], out[4];
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(seg, "input");
    const cJSON *output = cJSON_GetObjectItemCaseSensitive(seg, "output");
    if (int_list(cJSON_GetObjectItemCaseSensitive(input, "shape"), in, 4) != 4 || in[0] != 1 || in[3] != 3)
        return fail(msg, n, "%s: the segmenter's input shape is missing (expected [1, h, w, 3])", model);
    if (!string_is(cJSON_GetObjectItemCaseSensitive(output, "name"), "person") ||
        int_list(cJSON_GetObjectItemCaseSensitive(output, "shape"), out, 4) != 4 || out[0] != 1 || out[3] != 1)
        return fail(msg, n, "%s: the segmenter's output is not 'person' [1, h, w, 1]", model);
    c->seg_height = in[1];
    c->seg_width = in[2];
    c->person_height = out[1];
    c->person_width = out[2];
    return 0;
}

static int check_input_spec(const cJSON *spec, const input_role *r, int h, int w, const char *where,
                            bk_contract *c, char *msg, size_t n) {
    const char *what = !strcmp(r->name, "image") ? "input" : r->name;
    int dims[4], k = int_list(cJSON_GetObjectItemCaseSensitive(spec, "shape"), dims, 4);
    int ok = r->channels ? (k == 4 && dims[0] == 1 && dims[1] == h && dims[2] == w && dims[3] == r->channels)
                         : (k == 2 && dims[0] == 1 && dims[1] == 1);
    if (!ok) return fail(msg, n, "%s: %s shape in the sidecar does not match the input size %dx%d", where, what, h, w);
    if (!string_is(cJSON_GetObjectItemCaseSensitive(spec, "dtype"), "float32"))
        return fail(msg, n, "%s: %s dtype in the sidecar is not 'float32'", where, what);
    if (!string_is(cJSON_GetObjectItemCaseSensitive(spec, "layout"), r->channels ? "NHWC" : "N1"))
        return fail(msg, n, "%s: %s layout in the sidecar is not '%s'", where, what, r->channels ? "NHWC" : "N1");
    double lo, hi;
    if (!number_range(cJSON_GetObjectItemCaseSensitive(spec, "range"), &lo, &hi))
        return fail(msg, n, "%s: %s range in the sidecar is not [lo, hi] with finite lo < hi", where, what);
    if (!strcmp(r->name, "aperture")) c->max_aperture = hi;
    const cJSON *color = cJSON_GetObjectItemCaseSensitive(spec, "color");
    if (r->color ? !string_is(color, r->color) : color != NULL && !cJSON_IsNull(color))
        return fail(msg, n, "%s: %s color in the sidecar is not '%s'", where, what, r->color ? r->color : "none");
    return 0;
}

static int check_sidecar(const cJSON *j, const char *model, bk_contract *c, char *msg, size_t n) {
    memset(c, 0, sizeof *c);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "format");
    if (!string_is(v, SIDECAR_FORMAT))
        return fail(msg, n, "%s: sidecar format is %s, expected '%s'", model, cJSON_IsString(v) ? v->valuestring : "missing",
                    SIDECAR_FORMAT);
    v = cJSON_GetObjectItemCaseSensitive(j, "version");
    if (!is_int(v) || v->valuedouble != SIDECAR_VERSION)
        return fail(msg, n, "%s: sidecar version is not supported (this runtime reads version %d); export the "
                            "model again", model, SIDECAR_VERSION);
    v = cJSON_GetObjectItemCaseSensitive(j, "sha256");
    if (v && !cJSON_IsNull(v)) {
        char hex[65];
        if (!cJSON_IsString(v)) return fail(msg, n, "%s: sidecar sha256 is not a string", model);
        if (bk_sha256_file(model, hex)) return fail(msg, n, "%s: cannot read the model file", model);
        if (strcmp(hex, v->valuestring))
            return fail(msg, n, "%s: the sidecar JSON belongs to a different .tflite (sha256 mismatch); copy the "
                                "model and its sidecar from the same export", model);
    }
    v = cJSON_GetObjectItemCaseSensitive(j, "track");
    if (!cJSON_IsString(v) || (strcmp(v->valuestring, "cpu") && strcmp(v->valuestring, "gpu") &&
                               strcmp(v->valuestring, "render") && strcmp(v->valuestring, "portrait")))
        return fail(msg, n, "%s: track %s is not supported by this runtime (supported: cpu, gpu, render, portrait)",
                    model, cJSON_IsString(v) ? v->valuestring : "(missing)");
    snprintf(c->track, sizeof c->track, "%s", v->valuestring);
    c->depth_guided = !strcmp(c->track, "render");
    c->portrait = !strcmp(c->track, "portrait");
    int size[2];
    if (int_list(cJSON_GetObjectItemCaseSensitive(j, "input_size"), size, 2) != 2)
        return fail(msg, n, "%s: input_size must be [H, W] with positive integers", model);
    c->height = size[0];
    c->width = size[1];
    if (c->portrait) {
        int r = check_segmenter(j, model, c, msg, n);
        if (r) return r;
    }

    const char **names;
    int count = track_inputs(c->track, &names);
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(j, "inputs");
    if (!cJSON_IsArray(inputs)) return fail(msg, n, "%s: sidecar has no 'inputs'", model);
    if (cJSON_GetArraySize(inputs) != count)
        return fail(msg, n, "%s: sidecar inputs do not match the %s track's", model, c->track);
    const cJSON *spec;
    cJSON_ArrayForEach(spec, inputs) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(spec, "name");
        int found = 0;
        for (int i = 0; i < count && cJSON_IsString(name); i++) found |= !strcmp(names[i], name->valuestring);
        if (!found) return fail(msg, n, "%s: sidecar inputs do not match the %s track's", model, c->track);
        int h, w;
        input_size(c, name->valuestring, &h, &w);
        int r = check_input_spec(spec, role(name->valuestring), h, w, model, c, msg, n);
        if (r) return r;
    }

    const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(j, "outputs");
    if (!cJSON_IsArray(outputs) || cJSON_GetArraySize(outputs) < 1 || cJSON_GetArraySize(outputs) > BK_MAX_TENSORS)
        return fail(msg, n, "%s: sidecar has no 'outputs'", model);
    cJSON_ArrayForEach(spec, outputs) {
        bk_output_spec *o = &c->outputs[c->n_outputs++];
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(spec, "name");
        if (!cJSON_IsString(name)) return fail(msg, n, "%s: sidecar outputs must be a list of objects with a name", model);
        snprintf(o->name, sizeof o->name, "%s", name->valuestring);
        const cJSON *layout = cJSON_GetObjectItemCaseSensitive(spec, "layout");
        if (!string_is(cJSON_GetObjectItemCaseSensitive(spec, "dtype"), "float32") ||
            !(string_is(layout, "NHWC") || string_is(layout, "N1")))
            return fail(msg, n, "%s: output '%s' must be float32 NHWC (or N1 for a scalar)", model, o->name);
        o->rank = int_list(cJSON_GetObjectItemCaseSensitive(spec, "shape"), o->shape, 4);
        int image = o->rank == 4 && string_is(layout, "NHWC");
        int scalar = o->rank == 2 && o->shape[0] == 1 && o->shape[1] == 1;
        if (!image && !scalar)
            return fail(msg, n, "%s: output '%s' has no valid shape in the sidecar", model, o->name);
    }

    const cJSON *post = cJSON_GetObjectItemCaseSensitive(j, "postprocess");
    if (!cJSON_IsObject(post)) return fail(msg, n, "%s: sidecar has no 'postprocess'", model);
    if (!string_is(cJSON_GetObjectItemCaseSensitive(post, "blend"), "eq9"))
        return fail(msg, n, "%s: postprocess blend is not supported (expected 'eq9')", model);
    const char *roles[2] = {"source", "defocus"};
    for (int k = 0; k < 2; k++) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(post, roles[k]);
        const bk_output_spec *o = NULL;
        for (int i = 0; i < c->n_outputs && cJSON_IsString(name); i++)
            if (!strcmp(c->outputs[i].name, name->valuestring)) o = &c->outputs[i];
        if (!o) return fail(msg, n, "%s: postprocess %s is not one of the outputs", model, roles[k]);
        int channels = k ? 1 : 3;
        if (o->rank != 4 || o->shape[0] != 1 || o->shape[3] != channels)
            return fail(msg, n, "%s: output '%s' must have shape [1, h, w, %d]", model, o->name, channels);
        if (c->height % o->shape[1] || c->width % o->shape[2] || c->height / o->shape[1] != c->width / o->shape[2])
            return fail(msg, n, "%s: output '%s' is not the input %dx%d divided by one integer factor", model, o->name,
                        c->height, c->width);
        snprintf(k ? c->defocus : c->source, sizeof c->source, "%s", o->name);
    }
    const cJSON *eta = cJSON_GetObjectItemCaseSensitive(post, "eta"), *tau = cJSON_GetObjectItemCaseSensitive(post, "tau");
    if (!cJSON_IsNumber(eta) || !cJSON_IsNumber(tau) || !isfinite(eta->valuedouble) || !isfinite(tau->valuedouble))
        return fail(msg, n, "%s: postprocess eta and tau must be finite numbers", model);
    c->eta = (float)eta->valuedouble;
    c->tau = (float)tau->valuedouble;
    /* F9 (docs/contract.md): export-tflite runs every float16 export on LiteRT's GPU accelerator
     * and records it; an unverified model does not go to the GPU. The cpu track, never run there,
     * compiles and computes garbage with the tiny backbone (2-channel groups: 13.8 dB against the
     * CPU), and libbokeh cannot see the validation errors that say so. */
    const cJSON *gpu = cJSON_GetObjectItemCaseSensitive(j, "gpu_accelerator");
    const cJSON *verified = cJSON_GetObjectItemCaseSensitive(gpu, "verified");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(gpu, "reason");
    c->gpu_verified = cJSON_IsTrue(verified);
    snprintf(c->gpu_note, sizeof c->gpu_note, "%s",
             cJSON_IsString(reason) ? reason->valuestring : "the contract records no verified run");
    const cJSON *weights = cJSON_GetObjectItemCaseSensitive(j, "weights");
    snprintf(c->weights, sizeof c->weights, "%s", cJSON_IsString(weights) ? weights->valuestring : "unknown");
    if ((c->depth_guided || c->portrait) && !(c->max_aperture > 0))
        return fail(msg, n, "%s: the sidecar gives the aperture input no range", model);
    return check_host(j, model, c, msg, n);
}

int bk_contract_read(LiteRtEnvironment env, const char *model, bk_contract *c, char *msg, size_t n) {
    struct stat st;
    if (stat(model, &st) || !S_ISREG(st.st_mode)) return fail(msg, n, "%s: model file not found", model);
    if (st.st_size == 0) return fail(msg, n, "%s: model file is empty", model);
    const char *base = strrchr(model, '/') ? strrchr(model, '/') + 1 : model;
    if (!strcmp(base, SEGMENTER_FILE))
        return fail(msg, n, "%s is the person segmenter of a portrait pipeline, not a bokeh model; render portraits "
                            "with --portrait DIR, or -m with the portrait model", model);
    char path[4096];
    sidecar_path(model, path, sizeof path);
    int status = 0, embedded = stat(path, &st) != 0;
    cJSON *j = embedded ? embedded_json(env, model, msg, n, &status) : read_json(path, msg, n, &status, "sidecar JSON");
    if (!j && embedded && !status)
        return fail(msg, n, "%s: sidecar JSON not found, and the model carries no embedded contract (metadata '%s'); "
                            "export-tflite writes both: copy the .json with the .tflite, or export it again",
                    path, CONTRACT_KEY);
    if (!j) return status;
    status = check_sidecar(j, model, c, msg, n);
    c->embedded = embedded;
    cJSON_Delete(j);
    return status;
}

int bk_contract_check(const bk_contract *c, const bk_model *m, const char *model, char *msg, size_t n) {
    const char **names;
    int count = track_inputs(c->track, &names);
    if (bk_model_num_inputs(m) != count)
        return fail(msg, n, "%s: the model's signature takes %d inputs, the %s track %d", model, bk_model_num_inputs(m),
                    c->track, count);
    for (int i = 0; i < count; i++) {
        int k = bk_model_find_input(m, names[i]);
        if (k < 0) return fail(msg, n, "%s: the model's signature has no input '%s'", model, names[i]);
        const bk_tensor_info *t = bk_model_input(m, k);
        const input_role *r = role(names[i]);
        int h, w;
        input_size(c, names[i], &h, &w);
        int ok = r->channels ? (t->rank == 4 && t->dims[0] == 1 && t->dims[1] == h && t->dims[2] == w &&
                                t->dims[3] == r->channels)
                             : (t->rank == 2 && t->dims[0] == 1 && t->dims[1] == 1);
        if (!ok) return fail(msg, n, "%s: input '%s' has another shape in the model than the sidecar says", model, names[i]);
    }
    if (bk_model_num_outputs(m) != c->n_outputs)
        return fail(msg, n, "%s: the signature's outputs are not the ones the sidecar declares", model);
    for (int i = 0; i < c->n_outputs; i++) {
        int k = bk_model_find_output(m, c->outputs[i].name);
        if (k < 0) return fail(msg, n, "%s: the signature's outputs are not the ones the sidecar declares", model);
        const bk_tensor_info *t = bk_model_output(m, k);
        int same = t->rank == c->outputs[i].rank;
        for (int d = 0; d < t->rank && same; d++) same = t->dims[d] == c->outputs[i].shape[d];
        if (!same)
            return fail(msg, n, "%s: output '%s' has another shape in the model than the sidecar says", model,
                        c->outputs[i].name);
    }
    return 0;
}

/* ---- the portrait model in a folder ------------------------------------------------------ */

static int portrait_name(const char *name, const char *suffix) {
    int h, w;
    char tail[8];
    return sscanf(name, "bokeh_portrait_%dx%d%7s", &h, &w, tail) == 3 && !strcmp(tail, suffix);
}

/* The portrait model (.tflite) in `folder`; the old pipeline's sidecar is named when only that is there. */
int bk_portrait_find(const char *folder, char *out, size_t size, char *msg, size_t n) {
    DIR *dir = opendir(folder);
    if (!dir) return fail(msg, n, "%s: portrait pipeline folder not found", folder);
    int found = 0, has_default = 0;
    char first[1024] = "", all[2048] = "", old[1024] = "";
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (portrait_name(e->d_name, ".json") && !old[0]) snprintf(old, sizeof old, "%s", e->d_name);
        if (!portrait_name(e->d_name, ".tflite")) continue;
        if (!strcmp(e->d_name, DEFAULT_PORTRAIT)) has_default = 1;
        if (!found || strcmp(e->d_name, first) < 0) snprintf(first, sizeof first, "%s", e->d_name);
        if (strlen(all) + strlen(e->d_name) + 3 < sizeof all) {
            if (found) strcat(all, ", ");
            strcat(all, e->d_name);
        }
        found++;
    }
    closedir(dir);
    if (!found && old[0]) {          /* perhaps the old two-model pipeline: say so */
        char sidecar[4096];
        snprintf(sidecar, sizeof sidecar, "%s/%s", folder, old);
        int status = 0;
        cJSON *j = read_json(sidecar, msg, n, &status, "portrait sidecar");
        int is_old = j && string_is(cJSON_GetObjectItemCaseSensitive(j, "format"), OLD_PORTRAIT_FORMAT);
        cJSON_Delete(j);
        if (is_old)
            return fail(msg, n, "%s: an older portrait pipeline (segmenter + render track, format '%s'), which this "
                                "runtime no longer reads; re-export with export-tflite --track portrait", sidecar,
                        OLD_PORTRAIT_FORMAT);
    }
    if (!found)
        return fail(msg, n, "no portrait pipeline in %s: make one with `export-tflite --track portrait -o %s`", folder,
                    folder);
    if (found > 1 && !has_default)
        return fail(msg, n, "%s holds several portrait pipelines (%s) and none at the default size; keep one", folder, all);
    snprintf(out, size, "%s/%s", folder, has_default ? DEFAULT_PORTRAIT : first);
    return 0;
}
