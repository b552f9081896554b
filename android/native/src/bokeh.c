/* libbokeh's handle API (include/bokeh.h): open checks the files and compiles the models;
 * render carries out the contract's host steps around the model run, as
 * runtime/renderer.py and runtime/portrait.py do. Portrait mode is the segmenter, then
 * the portrait model (which derives disparity, focus and mask in its graph), then the
 * same Eq. 9 blend as the gpu track's: no arithmetic of its own. */
#define _GNU_SOURCE          /* dladdr, sysconf */
#include "bokeh.h"

#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "contract.h"
#include "host.h"
#include "litert_abi.h"
#include "model.h"


struct bokeh_pipeline {
    char message[1024];
    bokeh_options options;
    char library_dir[4096];
    LiteRtEnvironment env;
    bk_contract contract;
    bk_model *model;
    bk_model *segmenter;           /* portrait only: feeds the model's person input */
    int open;                      /* set only at the end of a successful bokeh_open */
    int in_image, in_disparity, in_focus, in_aperture, in_person, out_source, out_defocus;
    int out_share;                 /* portrait: person_share */
    int seg_in, seg_out;
    float *input, *disparity_input, *source, *defocus;
    float *seg_input, *person;     /* portrait: the segmenter's input and its person output */
    float share;                   /* portrait: the latest run's person_share */
    bokeh_info info;
};

static bokeh_status fail(bokeh_pipeline *p, bokeh_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->message, sizeof p->message, fmt, ap);
    va_end(ap);
    return status;
}

void bokeh_options_init(bokeh_options *o) {
    memset(o, 0, sizeof *o);
    o->accelerator = BOKEH_ACCELERATOR_AUTO;
    o->gpu_precision = BOKEH_GPU_FP32;
}

const char *bokeh_message(const bokeh_pipeline *p) { return p ? p->message : "out of memory"; }

/* LiteRT finds its GPU accelerator library through an environment option naming a folder
 * (rpath does not help); by default, the folder libLiteRt.so itself was loaded from. */
static void default_library_dir(char *out, size_t n) {
    Dl_info info;
    out[0] = 0;
    if (dladdr((void *)&LiteRtCreateEnvironment, &info) && info.dli_fname) {
        snprintf(out, n, "%s", info.dli_fname);
        char *slash = strrchr(out, '/');
        if (slash) *slash = 0;
        else out[0] = 0;
    }
}

/* Threads for the host steps: the CPU threads asked for, else every core. */
static int host_threads(const bokeh_pipeline *p) {
    if (p->options.threads > 0) return p->options.threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 16 ? 16 : (int)n;
}

static int open_model(bokeh_pipeline *p, const char *path, const char *cpu_reason, bk_model **m) {
    bk_model_options mo = {p->options.accelerator, p->options.gpu_precision == BOKEH_GPU_FP16, p->options.threads,
                           cpu_reason, p->options.software_gpu};
    return bk_model_open(p->env, path, &mo, m, p->message, sizeof p->message);
}

static size_t tensor_count(const bk_model *m, int output, int index) {
    return output ? bk_model_output(m, index)->count : bk_model_input(m, index)->count;
}

/* The portrait model's segmenter, checked against the sidecar and the person input. */
static bokeh_status open_segmenter(bokeh_pipeline *p) {
    const bk_contract *c = &p->contract;
    int r = open_model(p, c->segmenter, NULL, &p->segmenter);
    if (r) return (bokeh_status)r;
    p->seg_in = bk_model_find_input(p->segmenter, "image");
    p->seg_out = bk_model_find_output(p->segmenter, "person");
    const bk_tensor_info *in = p->seg_in >= 0 ? bk_model_input(p->segmenter, p->seg_in) : NULL;
    const bk_tensor_info *out = p->seg_out >= 0 ? bk_model_output(p->segmenter, p->seg_out) : NULL;
    if (!in || !out || in->rank != 4 || in->dims[0] != 1 || in->dims[1] != c->seg_height ||
        in->dims[2] != c->seg_width || in->dims[3] != 3 || out->rank != 4 || out->dims[0] != 1 ||
        out->dims[1] != c->person_height || out->dims[2] != c->person_width || out->dims[3] != 1)
        return fail(p, BOKEH_ERROR_MODEL, "%s: the segmenter does not take 'image' [1, %d, %d, 3] and give 'person' "
                    "[1, %d, %d, 1] as the portrait sidecar says", c->segmenter, c->seg_height, c->seg_width,
                    c->person_height, c->person_width);
    p->seg_input = malloc(sizeof(float) * in->count);
    p->person = malloc(sizeof(float) * out->count);
    if (!p->seg_input || !p->person) return fail(p, BOKEH_ERROR_MEMORY, "out of memory");
    return BOKEH_OK;
}

/* One exported model and its sidecar; a portrait-track model brings its segmenter. */
static bokeh_status open_track_model(bokeh_pipeline *p, const char *path) {
    int r = bk_contract_read(p->env, path, &p->contract, p->message, sizeof p->message);
    if (r) return (bokeh_status)r;
    const bk_contract *c = &p->contract;
    char reason[512] = "";
    if (!c->gpu_verified) {
        if (p->options.accelerator == BOKEH_ACCELERATOR_GPU)
            /* F9 (docs/contract.md), the line bokeh-render and export-tflite --check-gpu write too
             * (bokehlite/contract.py, gpu_refusal). */
            return fail(p, BOKEH_ERROR_ACCELERATOR, "%s: not for LiteRT's GPU accelerator: not verified there at "
                        "export (%s); the gpu track is the model for GPUs (export-tflite --track gpu); run this "
                        "one on the CPU", path, c->gpu_note);
        snprintf(reason, sizeof reason, "not verified on the GPU at export (%s)", c->gpu_note);
    }
    r = open_model(p, path, reason[0] ? reason : NULL, &p->model);
    if (r) return (bokeh_status)r;
    r = bk_contract_check(c, p->model, path, p->message, sizeof p->message);
    if (r) return (bokeh_status)r;
    p->in_image = bk_model_find_input(p->model, "image");
    p->in_disparity = bk_model_find_input(p->model, "disparity");
    p->in_focus = bk_model_find_input(p->model, "focus");
    p->in_aperture = bk_model_find_input(p->model, "aperture");
    p->in_person = bk_model_find_input(p->model, "person");
    p->out_source = bk_model_find_output(p->model, c->source);
    p->out_defocus = bk_model_find_output(p->model, c->defocus);
    p->out_share = bk_model_find_output(p->model, "person_share");
    if (c->portrait) {
        const bk_tensor_info *share = p->out_share >= 0 ? bk_model_output(p->model, p->out_share) : NULL;
        if (!share || share->count != 1)
            return fail(p, BOKEH_ERROR_MODEL, "%s: the portrait model has no output 'person_share' [1, 1]", path);
    }
    p->input = malloc(sizeof(float) * tensor_count(p->model, 0, p->in_image));
    p->source = malloc(sizeof(float) * tensor_count(p->model, 1, p->out_source));
    p->defocus = malloc(sizeof(float) * tensor_count(p->model, 1, p->out_defocus));
    if (c->depth_guided) p->disparity_input = malloc(sizeof(float) * tensor_count(p->model, 0, p->in_disparity));
    if (!p->input || !p->source || !p->defocus || (c->depth_guided && !p->disparity_input))
        return fail(p, BOKEH_ERROR_MEMORY, "out of memory");
    return c->portrait ? open_segmenter(p) : BOKEH_OK;
}

/* A folder: the portrait model in it (bokeh_portrait_<H>x<W>.json and its .tflite). */
static bokeh_status open_portrait(bokeh_pipeline *p, const char *folder) {
    char model[4096];
    int r = bk_portrait_find(folder, model, sizeof model, p->message, sizeof p->message);
    if (r) return (bokeh_status)r;
    r = open_track_model(p, model);
    if (r) return (bokeh_status)r;
    if (!p->contract.portrait)
        return fail(p, BOKEH_ERROR_MODEL, "%s: a %s-track model, not a portrait model; re-export with export-tflite "
                    "--track portrait", model, p->contract.track);
    return BOKEH_OK;
}

bokeh_status bokeh_open(const char *path, const bokeh_options *options, bokeh_pipeline **out) {
    if (!out) return BOKEH_ERROR_ARGUMENT;
    bokeh_pipeline *p = calloc(1, sizeof *p);
    *out = p;
    if (!p) return BOKEH_ERROR_MEMORY;
    if (options) p->options = *options;
    else bokeh_options_init(&p->options);
    if (!path) return fail(p, BOKEH_ERROR_ARGUMENT, "no model path given");
    if (p->options.accelerator < BOKEH_ACCELERATOR_AUTO || p->options.accelerator > BOKEH_ACCELERATOR_GPU ||
        p->options.threads < 0)
        return fail(p, BOKEH_ERROR_ARGUMENT, "bad options (accelerator %d, threads %d)", p->options.accelerator,
                    p->options.threads);
    if (p->options.library_dir) snprintf(p->library_dir, sizeof p->library_dir, "%s", p->options.library_dir);
    else default_library_dir(p->library_dir, sizeof p->library_dir);
    p->options.library_dir = p->library_dir;

    struct stat st;
    int folder = !stat(path, &st) && S_ISDIR(st.st_mode);
    if (!folder && !stat(path, &st)) {     /* a photo given as the model, say: before any sidecar is sought */
        unsigned char head[8] = {0};
        FILE *f = fopen(path, "rb");
        size_t got = f ? fread(head, 1, sizeof head, f) : 0;
        if (f) fclose(f);
        if (got == sizeof head && memcmp(head + 4, "TFL3", 4))
            return fail(p, BOKEH_ERROR_MODEL, "%s: not a TFLite model (no TFL3 identifier); give the .tflite "
                        "that export-tflite wrote", path);
    }

    double t0 = bk_now_ms();
    LiteRtEnvOption env_options[2];
    int n_env = 0;
    /* A library reports through its status and message, not on the app's stderr. */
    env_options[n_env].tag = kLiteRtEnvOptionTagMinLoggerSeverity;
    env_options[n_env].value.type = kLiteRtAnyTypeInt;
    env_options[n_env++].value.int_value = kLiteRtLogSeveritySilent;
    if (p->library_dir[0]) {
        env_options[n_env].tag = kLiteRtEnvOptionTagRuntimeLibraryDir;
        env_options[n_env].value.type = kLiteRtAnyTypeString;
        env_options[n_env++].value.str_value = p->library_dir;
    }
    if (LiteRtCreateEnvironment(n_env, env_options, &p->env) != kLiteRtStatusOk)
        return fail(p, BOKEH_ERROR_RUNTIME, "cannot create a LiteRT environment");
    bokeh_status s = folder ? open_portrait(p, path) : open_track_model(p, path);
    if (s != BOKEH_OK) return s;
    double total = bk_now_ms() - t0;
    bokeh_info *i = &p->info;
    i->track = p->contract.track;
    i->input_height = p->contract.height;
    i->input_width = p->contract.width;
    i->accelerator = bk_model_on_gpu(p->model) ? "gpu" : "cpu";
    i->gpu_precision = bk_model_gpu_fp16(p->model) == 1 ? "fp16" : bk_model_gpu_fp16(p->model) == 0 ? "fp32" : NULL;
    i->fully_accelerated = bk_model_fully_accelerated(p->model);
    i->fallback = bk_model_fallback_reason(p->model);
    i->compile_ms = bk_model_compile_ms(p->model);
    if (p->segmenter) {
        i->segmenter_accelerator = bk_model_on_gpu(p->segmenter) ? "gpu" : "cpu";
        i->fully_accelerated = i->fully_accelerated && bk_model_fully_accelerated(p->segmenter);
        i->compile_ms += bk_model_compile_ms(p->segmenter);
        if (!i->fallback[0]) i->fallback = bk_model_fallback_reason(p->segmenter);
    }
    i->load_ms = total - i->compile_ms;
    i->weights = p->contract.weights;
    i->focus = NAN;
    p->message[0] = 0;
    p->open = 1;
    return BOKEH_OK;
}

/* After a failed bokeh_open every call but bokeh_message and bokeh_close is refused: the
 * pipeline may hold a model whose contract was not met, or none. */
static bokeh_status not_open(bokeh_pipeline *p) {
    return fail(p, BOKEH_ERROR_ARGUMENT, "the pipeline is not open");
}

void bokeh_close(bokeh_pipeline *p) {
    if (!p) return;
    bk_model_close(p->model);
    bk_model_close(p->segmenter);
    if (p->env) LiteRtDestroyEnvironment(p->env);
    free(p->input);
    free(p->disparity_input);
    free(p->source);
    free(p->defocus);
    free(p->seg_input);
    free(p->person);
    free(p);
}

bokeh_status bokeh_get_info(const bokeh_pipeline *p, bokeh_info *info) {
    if (!p) return BOKEH_ERROR_ARGUMENT;
    /* The handle was allocated writable; const only says that the info is not changed. */
    if (!p->open) return not_open((bokeh_pipeline *)p);
    if (!info) return fail((bokeh_pipeline *)p, BOKEH_ERROR_ARGUMENT, "NULL argument");
    *info = p->info;
    return BOKEH_OK;
}

int bokeh_needs_depth(const bokeh_pipeline *p) { return p && p->open && p->contract.depth_guided; }

/* ---- pixels ---------------------------------------------------------------------------- */

typedef struct {
    int step;                /* bytes per pixel */
    int r, g, b, a;          /* byte offsets; a < 0: no alpha */
    int grey;
} pixel_layout;

static int layout_of(bokeh_format f, pixel_layout *l) {
    static const union { uint32_t word; uint8_t bytes[4]; } probe = {0x01020304u};
    int little = probe.bytes[0] == 0x04;
    switch (f) {
    case BOKEH_FORMAT_RGBA8888: *l = (pixel_layout){4, 0, 1, 2, 3, 0}; return 0;
    case BOKEH_FORMAT_RGB888: *l = (pixel_layout){3, 0, 1, 2, -1, 0}; return 0;
    case BOKEH_FORMAT_GRAY8: *l = (pixel_layout){1, 0, 0, 0, -1, 1}; return 0;
    case BOKEH_FORMAT_ARGB_INT:
        *l = little ? (pixel_layout){4, 2, 1, 0, 3, 0} : (pixel_layout){4, 1, 2, 3, 0, 0};
        return 0;
    }
    return -1;
}

/* One render's photo: the caller's pixels, where the result goes (the same size and layout;
 * it may be the pixels themselves), and the packed colour copy that the fit reads. */
typedef struct {
    const uint8_t *pixels;
    size_t stride;                 /* bytes per row */
    uint8_t *out;
    size_t out_stride;             /* bytes per row */
    int width, height;
    pixel_layout layout;
    uint8_t *colour;               /* width x height packed RGB (grey: one byte), or NULL */
} photo;

/* What a render takes besides the photo, checked, with the defaults filled in. */
typedef struct {
    const float *disparity;        /* render track: the photo's, width x height in [0, 1]; else NULL */
    float focus;                   /* render track: the in-focus disparity; else NaN */
    double aperture;               /* render and portrait: blur radius in photo pixels per unit
                                      |disparity - focus| (the model's input is in its own pixels) */
} render_params;

/* The photo's colour as packed RGB (or grey) bytes: what the letterbox fit resizes. */
static uint8_t *colour_copy(const photo *ph) {
    const pixel_layout *l = &ph->layout;
    int w = ph->width, cn = l->grey ? 1 : 3;
    uint8_t *c = malloc((size_t)w * ph->height * cn);
    if (!c) return NULL;
    for (int y = 0; y < ph->height; y++) {
        const uint8_t *row = ph->pixels + (size_t)y * ph->stride;
        uint8_t *o = c + (size_t)y * w * cn;
        if (l->grey) {
            memcpy(o, row, (size_t)w);
            continue;
        }
        for (int x = 0; x < w; x++) {
            const uint8_t *q = row + (size_t)x * l->step;
            o[3 * x] = q[l->r];
            o[3 * x + 1] = q[l->g];
            o[3 * x + 2] = q[l->b];
        }
    }
    return c;
}

/* Run the model and read outputs (out_a, out_b; -1: none) into a and b. Reading is timed
 * with the run: on a GPU the run only queues the work, and the read waits for it. */
static bokeh_status run_model(bokeh_pipeline *p, bk_model *m, int out_a, float *a, int out_b, float *b) {
    double t0 = bk_now_ms();
    int r = bk_model_run(m, p->message, sizeof p->message);
    if (!r && out_a >= 0) r = bk_model_read(m, out_a, a, p->message, sizeof p->message);
    if (!r && out_b >= 0) r = bk_model_read(m, out_b, b, p->message, sizeof p->message);
    if (r) return (bokeh_status)r;
    double ms = bk_now_ms() - t0;
    if (p->info.renders == 0) p->info.first_run_ms += ms;     /* no render has succeeded yet */
    p->info.last_run_ms += ms;
    return BOKEH_OK;
}

/* As bokeh-render: a NaN or an infinity would blend into garbage without a word. */
static bokeh_status check_finite(bokeh_pipeline *p, int output, const float *values, const char *name) {
    size_t n = tensor_count(p->model, 1, output);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(values[i]))
            return fail(p, BOKEH_ERROR_RUNTIME, "the model's output '%s' is not finite (NaN or infinity)", name);
    return BOKEH_OK;
}

typedef struct {
    bokeh_pipeline *p;
    const photo *ph;
    _Atomic int failed;
    bk_sampler bokeh, defocus;
} blend_job;

/* Photo rows [r0, r1): sample B and D back and blend (Eq. 9); rows are independent. */
static void blend_rows(void *arg, int r0, int r1) {
    blend_job *j = arg;
    const photo *ph = j->ph;
    const pixel_layout *l = &ph->layout;
    int w = ph->width;
    float *brow = malloc(sizeof(float) * (size_t)w * 3), *drow = malloc(sizeof(float) * (size_t)w);
    if (!brow || !drow) {
        j->failed = 1;
        free(brow);
        free(drow);
        return;
    }
    for (int y = r0; y < r1; y++) {
        bk_sample_row(&j->bokeh, j->p->source, 3, y, brow);
        bk_sample_row(&j->defocus, j->p->defocus, 1, y, drow);
        const uint8_t *in_row = ph->pixels + (size_t)y * ph->stride;
        uint8_t *out_row = ph->out + (size_t)y * ph->out_stride;
        if (l->a >= 0 && out_row != in_row)
            for (int x = 0; x < w; x++) out_row[x * l->step + l->a] = in_row[x * l->step + l->a];
        bk_blend_row(in_row, l->step, l->r, l->g, l->b, l->grey, w, brow, drow, j->p->contract.eta,
                     j->p->contract.tau, out_row);
    }
    free(brow);
    free(drow);
}

/* The model has run: check B and D, sample them back through the letterbox and blend
 * them with the photo at its own resolution (Eq. 9) into the photo's out. */
static bokeh_status blend_photo(bokeh_pipeline *p, const bk_letterbox *box, const photo *ph) {
    bokeh_status st = check_finite(p, p->out_source, p->source, p->contract.source);
    if (!st) st = check_finite(p, p->out_defocus, p->defocus, p->contract.defocus);
    if (st) return st;
    double t0 = bk_now_ms();
    const bk_tensor_info *src = bk_model_output(p->model, p->out_source), *def = bk_model_output(p->model, p->out_defocus);
    blend_job job = {p, ph, 0};
    if (bk_sampler_init(&job.bokeh, box, src->dims[1], src->dims[2]))
        return fail(p, BOKEH_ERROR_MEMORY, "out of memory");
    if (bk_sampler_init(&job.defocus, box, def->dims[1], def->dims[2])) {
        bk_sampler_free(&job.bokeh);
        return fail(p, BOKEH_ERROR_MEMORY, "out of memory");
    }
    bk_parallel_rows(host_threads(p), ph->height, blend_rows, &job);
    bk_sampler_free(&job.bokeh);
    bk_sampler_free(&job.defocus);
    if (job.failed) return fail(p, BOKEH_ERROR_MEMORY, "out of memory");
    p->info.post_ms += bk_now_ms() - t0;
    return BOKEH_OK;
}

/* The photo into the model's image input through its letterbox (p->input), and that box. */
static bokeh_status fit_photo(bokeh_pipeline *p, const photo *ph, bk_letterbox *box) {
    bk_letterbox_fit(ph->height, ph->width, p->contract.height, p->contract.width, box);
    if (bk_fit_photo(ph->colour, ph->layout.grey ? 1 : 3, box, p->input, host_threads(p)))
        return fail(p, BOKEH_ERROR_MEMORY, "out of memory");
    return BOKEH_OK;
}

/* The aperture is in photo pixels; the model's are the letterbox's scale of them. */
static float model_aperture(double aperture, const bk_letterbox *box) {
    return (float)(aperture * bk_letterbox_scale(box));
}

/* A cpu-, gpu- or render-track model on one photo: fit, run, blend (Eq. 9) into out. */
static bokeh_status render_photo(bokeh_pipeline *p, const photo *ph, const render_params *rp) {
    double t0 = bk_now_ms();
    bk_letterbox box;
    bokeh_status st = fit_photo(p, ph, &box);
    if (st) return st;
    int r = bk_model_write(p->model, p->in_image, p->input, p->message, sizeof p->message);
    if (!r && p->contract.depth_guided) {
        if (bk_fit_map(rp->disparity, &box, p->disparity_input)) return fail(p, BOKEH_ERROR_MEMORY, "out of memory");
        float f = rp->focus, a = model_aperture(rp->aperture, &box);
        r = bk_model_write(p->model, p->in_disparity, p->disparity_input, p->message, sizeof p->message);
        if (!r) r = bk_model_write(p->model, p->in_focus, &f, p->message, sizeof p->message);
        if (!r) r = bk_model_write(p->model, p->in_aperture, &a, p->message, sizeof p->message);
    }
    if (r) return (bokeh_status)r;
    p->info.pre_ms += bk_now_ms() - t0;
    r = run_model(p, p->model, p->out_source, p->source, p->out_defocus, p->defocus);
    if (r) return (bokeh_status)r;
    return blend_photo(p, &box, ph);
}

static bokeh_status check_disparity(bokeh_pipeline *p, const float *d, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(d[i] >= 0.f && d[i] <= 1.f))          /* also false for NaN */
            return fail(p, BOKEH_ERROR_DEPTH, "expected disparity values in [0, 1], got %g", (double)d[i]);
    return BOKEH_OK;
}

/* What an app does with a portrait model (its sidecar's contract): fit the photo into the
 * model; fit that model image into the segmenter with the same fit; the segmenter's person
 * output goes to the model as it comes out; the model's person_share decides whether there
 * is a person; its blur and defocus are blended as the gpu track's are. Of the render
 * parameters it takes the aperture only: the model derives disparity and focus. */
static bokeh_status render_portrait(bokeh_pipeline *p, const photo *ph, const render_params *rp) {
    bk_contract *c = &p->contract;
    double t0 = bk_now_ms();
    bk_letterbox box, seg_box;
    bokeh_status st = fit_photo(p, ph, &box);
    if (st) return st;
    bk_letterbox_fit(c->height, c->width, c->seg_height, c->seg_width, &seg_box);
    if (bk_fit_image_f32(p->input, &seg_box, p->seg_input)) return fail(p, BOKEH_ERROR_MEMORY, "out of memory");
    int r = bk_model_write(p->segmenter, p->seg_in, p->seg_input, p->message, sizeof p->message);
    if (r) return (bokeh_status)r;
    p->info.pre_ms += bk_now_ms() - t0;
    r = run_model(p, p->segmenter, p->seg_out, p->person, -1, NULL);
    if (r) return (bokeh_status)r;

    float a = model_aperture(rp->aperture, &box);
    r = bk_model_write(p->model, p->in_image, p->input, p->message, sizeof p->message);
    if (!r) r = bk_model_write(p->model, p->in_person, p->person, p->message, sizeof p->message);
    if (!r) r = bk_model_write(p->model, p->in_aperture, &a, p->message, sizeof p->message);
    if (!r) r = run_model(p, p->model, p->out_source, p->source, p->out_defocus, p->defocus);
    if (!r) r = bk_model_read(p->model, p->out_share, &p->share, p->message, sizeof p->message);
    if (r) return (bokeh_status)r;
    if (!isfinite(p->share))
        return fail(p, BOKEH_ERROR_RUNTIME, "the model's output 'person_share' is not finite (NaN or infinity)");
    p->info.person_share = p->share;
    p->info.person_found = p->share >= p->contract.min_person;
    if (p->info.person_found) return blend_photo(p, &box, ph);
    /* No person: the photo is left unchanged (bokeh-render warns). */
    for (int y = 0; y < ph->height; y++) {
        uint8_t *to = ph->out + (size_t)y * ph->out_stride;
        const uint8_t *from = ph->pixels + (size_t)y * ph->stride;
        if (to != from) memmove(to, from, (size_t)ph->width * ph->layout.step);
    }
    return BOKEH_OK;
}

/* The photo's pointers, size and strides, before anything is read. */
static bokeh_status check_photo(bokeh_pipeline *p, const photo *ph) {
    int width = ph->width, height = ph->height, step = ph->layout.step;
    if (!ph->pixels || !ph->out) return fail(p, BOKEH_ERROR_ARGUMENT, "pixels and out must not be NULL");
    if (width < 2 || height < 2)
        return fail(p, BOKEH_ERROR_ARGUMENT, "image is %dx%d; both sides must be at least 2 pixels", width, height);
    if (ph->stride < (size_t)width * step || ph->out_stride < (size_t)width * step)
        return fail(p, BOKEH_ERROR_ARGUMENT, "a stride is under %d bytes per row", width * step);
    /* In place, row y of out must be row y of the photo: the rows are blended in parallel,
     * each from its own photo row only. */
    if (ph->out == ph->pixels) {
        if (ph->out_stride != ph->stride)
            return fail(p, BOKEH_ERROR_ARGUMENT, "out is pixels itself but with another stride (%zu bytes per row, "
                        "not %zu); rendering in place needs the same stride", ph->out_stride, ph->stride);
    } else if (ph->out < ph->pixels + ph->stride * height && ph->pixels < ph->out + ph->out_stride * height) {
        return fail(p, BOKEH_ERROR_ARGUMENT, "out overlaps pixels without being them");
    }
    return BOKEH_OK;
}

/* The caller's bokeh_depth against the track, into render parameters with the defaults
 * filled in: the render track's disparity and focus (the centre box's median when not
 * given), and the aperture (the contract's default when not given) that the render and
 * portrait tracks take. */
static bokeh_status read_params(bokeh_pipeline *p, const bokeh_depth *depth, const photo *ph, render_params *rp) {
    const bk_contract *c = &p->contract;
    *rp = (render_params){NULL, NAN, c->default_aperture};
    if (c->portrait) {
        if (depth && (depth->disparity || !isnan(depth->focus)))
            return fail(p, BOKEH_ERROR_DEPTH, "a portrait model takes an aperture only: it derives the depth and "
                                              "the focus from the segmenter's person");
    } else if (c->depth_guided) {
        if (!depth || !depth->disparity)
            return fail(p, BOKEH_ERROR_DEPTH, "this is a depth-guided (render-track) model: it needs the photo's "
                                              "disparity map");
        bokeh_status s = check_disparity(p, depth->disparity, (size_t)ph->width * ph->height);
        if (s) return s;
        rp->disparity = depth->disparity;
        rp->focus = depth->focus;
        if (isnan(rp->focus)) rp->focus = bk_centre_focus(depth->disparity, ph->height, ph->width, c->centre_box);
        else if (!(rp->focus >= 0.f && rp->focus <= 1.f))
            return fail(p, BOKEH_ERROR_DEPTH, "expected focus in [0, 1], got %g", (double)rp->focus);
        p->info.focus = rp->focus;
    } else if (depth) {
        return fail(p, BOKEH_ERROR_DEPTH, "this is a %s-track model and takes no disparity, focus or aperture; those "
                                          "need a render-track model (export-tflite --track render)", c->track);
    }
    if (depth && !isnan(depth->aperture)) {
        /* The contract's largest aperture is in model pixels; the caller's is in photo pixels. */
        bk_letterbox box;
        bk_letterbox_fit(ph->height, ph->width, c->height, c->width, &box);
        double largest = c->max_aperture / bk_letterbox_scale(&box);
        if (!(depth->aperture >= 0.f && depth->aperture <= largest))      /* also false for inf */
            return fail(p, BOKEH_ERROR_DEPTH, "expected aperture in [0, %g] photo pixels (the model's %g at this "
                        "photo's scale), got %g", largest, c->max_aperture, (double)depth->aperture);
        rp->aperture = depth->aperture;
    }
    return BOKEH_OK;
}

bokeh_status bokeh_render(bokeh_pipeline *p, const void *pixels, int width, int height, size_t stride,
                          bokeh_format format, void *out, size_t out_stride, const bokeh_depth *depth) {
    if (!p) return BOKEH_ERROR_ARGUMENT;
    if (!p->open) return not_open(p);
    photo ph = {pixels, stride, out, out_stride, width, height};
    if (layout_of(format, &ph.layout)) return fail(p, BOKEH_ERROR_ARGUMENT, "unknown pixel format %d", (int)format);
    if (format == BOKEH_FORMAT_ARGB_INT) {      /* its strides are in ints */
        ph.stride *= 4;
        ph.out_stride *= 4;
    }
    render_params rp;
    bokeh_status s = check_photo(p, &ph);
    if (!s) s = read_params(p, depth, &ph, &rp);
    if (s) return s;

    p->info.last_run_ms = p->info.pre_ms = p->info.post_ms = 0;
    double t0 = bk_now_ms();
    ph.colour = colour_copy(&ph);
    if (!ph.colour) return fail(p, BOKEH_ERROR_MEMORY, "out of memory for a %dx%d photo", width, height);
    p->info.pre_ms += bk_now_ms() - t0;
    s = p->contract.portrait ? render_portrait(p, &ph, &rp) : render_photo(p, &ph, &rp);
    free(ph.colour);
    if (s != BOKEH_OK) return s;
    p->info.renders++;
    p->message[0] = 0;
    return BOKEH_OK;
}

bokeh_status bokeh_focus_at(bokeh_pipeline *p, const float *d, int w, int h, int x, int y, float *focus) {
    if (!p) return BOKEH_ERROR_ARGUMENT;
    if (!p->open) return not_open(p);
    if (!d || !focus) return fail(p, BOKEH_ERROR_ARGUMENT, "NULL argument");
    if (x < 0 || y < 0 || x >= w || y >= h)
        return fail(p, BOKEH_ERROR_DEPTH, "focus point %d,%d is outside the %dx%d photo (X is a column from 0 to %d, "
                                          "Y a row from 0 to %d)", x, y, w, h, w - 1, h - 1);
    /* The values the median is taken over (bk_focus_at's window, cut at the edges) must be
     * disparities: a NaN would give a NaN focus, which bokeh_render takes for "not given". */
    int top, left, bottom, right;
    bk_focus_window(h, w, x, y, p->contract.focus_window, &top, &left, &bottom, &right);
    for (int row = top; row < bottom; row++) {
        bokeh_status s = check_disparity(p, d + (size_t)row * w + left, (size_t)(right - left));
        if (s) return s;
    }
    *focus = bk_focus_at(d, h, w, x, y, p->contract.focus_window);
    return BOKEH_OK;
}

bokeh_status bokeh_disparity_from_map(bokeh_pipeline *p, const uint16_t *samples, int mw, int mh, int w, int h,
                                      float *disparity, char *warning, size_t warning_size) {
    if (!p) return BOKEH_ERROR_ARGUMENT;
    if (!p->open) return not_open(p);
    if (!samples || !disparity || mw < 2 || mh < 2 || w < 2 || h < 2)
        return fail(p, BOKEH_ERROR_ARGUMENT, "bad depth map arguments");
    if (warning && warning_size) warning[0] = 0;
    size_t n = (size_t)mw * mh;
    float *map = mw == w && mh == h ? disparity : malloc(sizeof(float) * n);
    if (!map) return fail(p, BOKEH_ERROR_MEMORY, "out of memory");
    int constant = bk_to_disparity_u16(samples, n, map);                    /* R7 */
    int aspect = map == disparity ? BK_ASPECT_SAME                          /* R10 */
                                  : bk_fit_disparity(map, mh, mw, disparity, h, w, p->contract.ratio_tolerance);
    if (map != disparity) free(map);
    if (aspect < 0) return fail(p, BOKEH_ERROR_MEMORY, "out of memory");
    char note[512] = "";
    if (constant) snprintf(note, sizeof note, "it is constant, so the whole photo is one plane (disparity 0.5)");
    if (aspect & BK_ASPECT_STRETCHED) {
        size_t k = strlen(note);
        snprintf(note + k, sizeof note - k, "%sits aspect ratio (%dx%d, %.3f) differs from the photo's (%dx%d, %.3f); "
                 "stretched to fit%s", k ? "; " : "", mw, mh, (double)mw / mh, w, h, (double)w / h,
                 aspect & BK_ASPECT_ROTATED ? " (is it rotated?)" : "");
    }
    if (warning && warning_size) snprintf(warning, warning_size, "%s", note);
    return BOKEH_OK;
}
