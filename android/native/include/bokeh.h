/* libbokeh: render learned bokeh on a photo with an exported bokehlite .tflite, on LiteRT.
 *
 *     bokeh_options opt;
 *     bokeh_options_init(&opt);                 // accelerator auto, fp32 GPU, LiteRT's threads
 *     bokeh_pipeline *p = NULL;
 *     if (bokeh_open("bokeh_gpu_1024x1536.tflite", &opt, &p) != BOKEH_OK)
 *         fprintf(stderr, "%s\n", bokeh_message(p));        // p may be NULL only when out of memory
 *     else
 *         bokeh_render(p, pixels, width, height, stride, BOKEH_FORMAT_RGBA8888, out, stride, NULL);
 *     bokeh_close(p);
 *
 * A pipeline is one exported model with its sidecar JSON (cpu, gpu, render or portrait
 * track), or a folder holding a portrait export. A portrait model comes with the person
 * segmenter its sidecar names (and fingerprints); it derives disparity, focus and mask in
 * its own graph, so portrait mode is the segmenter, the model and the Eq. 9 blend. A
 * pipeline carries out the host steps of the export -> runtime contract that bokeh-render
 * (the Python runtime) carries out, and gives the same pixels to within float rounding.
 *
 * Every function returns a status; the message of the last failure stays on the handle
 * (bokeh_message). Nothing aborts or exits. Pipelines are independent (the one process-wide
 * state is the software GPU's: see software_gpu), and one pipeline is used by one thread at
 * a time. */
#ifndef BOKEH_H
#define BOKEH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define BOKEH_API __attribute__((visibility("default")))
#else
#define BOKEH_API
#endif

typedef enum {
    BOKEH_OK = 0,
    BOKEH_ERROR_ARGUMENT = 1,     /* a bad argument (a NULL pointer, a size under 2x2 ...) */
    BOKEH_ERROR_MODEL = 2,        /* the model, its sidecar or the pipeline folder is unusable */
    BOKEH_ERROR_DEPTH = 3,        /* disparity, focus or aperture do not fit the track */
    BOKEH_ERROR_ACCELERATOR = 4,  /* the accelerator asked for cannot run the model here */
    BOKEH_ERROR_RUNTIME = 5,      /* LiteRT failed while running */
    BOKEH_ERROR_MEMORY = 6,
} bokeh_status;

typedef enum {
    BOKEH_ACCELERATOR_AUTO = 0,   /* the GPU if the export verified the model there and it takes every op,
                                     else the CPU */
    BOKEH_ACCELERATOR_CPU = 1,
    BOKEH_ACCELERATOR_GPU = 2,    /* the GPU or an error: no silent CPU fallback; a model whose contract
                                     records no verified GPU run (the cpu track) is refused
                                     (docs/contract.md, F9) */
} bokeh_accelerator;

typedef enum {
    BOKEH_GPU_FP32 = 0,
    BOKEH_GPU_FP16 = 1,
} bokeh_gpu_precision;

/* Pixel layouts. Alpha, where there is one, is copied through unchanged. */
typedef enum {
    BOKEH_FORMAT_RGBA8888 = 0,    /* bytes R, G, B, A: an Android Bitmap's ARGB_8888 memory */
    BOKEH_FORMAT_RGB888 = 1,      /* bytes R, G, B */
    BOKEH_FORMAT_GRAY8 = 2,       /* one byte; rendered as RGB, returned as Rec. 601 luma */
    BOKEH_FORMAT_ARGB_INT = 3,    /* 32-bit ints 0xAARRGGBB in native byte order: Bitmap.getPixels */
} bokeh_format;

typedef struct {
    int accelerator;              /* bokeh_accelerator */
    int gpu_precision;            /* bokeh_gpu_precision */
    int threads;                  /* CPU threads; 0: LiteRT's default */
    const char *library_dir;      /* folder of LiteRT's accelerator libraries; NULL: libLiteRt.so's own */
    int software_gpu;             /* 1: the GPU is a software device computing on this process's
                                     threads (SwiftShader): wait for the threads it started to go
                                     idle before reading outputs, since LiteRT's output lock gives
                                     up after 120 s. Its worker threads are shared by every
                                     pipeline on it, so runs on it take turns across the process */
} bokeh_options;

/* Depth-guided rendering (render track); a portrait model takes the aperture only. */
typedef struct {
    const float *disparity;       /* width x height of the photo, [0, 1], larger = nearer; rows packed */
    float focus;                  /* in-focus disparity in [0, 1]; NaN: the median of the central 10% box */
    float aperture;               /* blur radius in photo pixels per unit |disparity - focus|; NaN: 20 */
                                  /* (portrait: NULL disparity and NaN focus, which the model derives) */
} bokeh_depth;

typedef struct {
    const char *track;            /* "cpu", "gpu", "render" or "portrait" */
    int input_height, input_width;
    const char *accelerator;      /* what ran: "gpu" or "cpu" (portrait: the portrait model's) */
    const char *segmenter_accelerator;   /* portrait only, else NULL */
    const char *gpu_precision;    /* "fp32" or "fp16" as it runs (NULL on the CPU) */
    int fully_accelerated;        /* LiteRT says every op runs on that accelerator */
    const char *fallback;         /* why `auto` runs on the CPU; "" when it does not */
    double load_ms, compile_ms;   /* reading + checking the files; compiling (all models) */
    double first_run_ms, last_run_ms;   /* model time of the first and of the latest render */
    double pre_ms, post_ms;       /* host steps of the latest render: fit; sample + blend */
    int renders;
    /* render: the latest render's focal plane (NaN before the first render, and always NaN
     * for the other tracks, portrait included: its focus stays inside its graph).
     * portrait: the latest render's person share (the model's person_share output) and
     * whether it found a person (share >= the sidecar's min_person; if not, the photo was
     * returned unchanged) */
    double focus, person_share;
    int person_found;
    const char *weights;          /* the contract's: "trained", "untrained" (seeded: the render blurs
                                     the whole photo, so say so), "analytic" or "unknown" */
} bokeh_info;

typedef struct bokeh_pipeline bokeh_pipeline;

BOKEH_API void bokeh_options_init(bokeh_options *options);

/* Open a model (.tflite with its sidecar .json beside it), or a folder with a portrait export
 * (its bokeh_portrait_<H>x<W>.json, the default size if there, else the only one). The old
 * two-model portrait pipeline (format "bokehlite-portrait") is refused: re-export it.
 * Like sqlite3_open, *pipeline is set even on failure (unless memory runs out), so that
 * bokeh_message can say why; bokeh_close it either way. After a failed open, every other
 * call on it returns BOKEH_ERROR_ARGUMENT ("the pipeline is not open"; bokeh_needs_depth:
 * 0). options may be NULL. */
BOKEH_API bokeh_status bokeh_open(const char *path, const bokeh_options *options, bokeh_pipeline **pipeline);
BOKEH_API void bokeh_close(bokeh_pipeline *pipeline);

/* The message of the last failure on this pipeline ("" after a success); never NULL. */
BOKEH_API const char *bokeh_message(const bokeh_pipeline *pipeline);
BOKEH_API bokeh_status bokeh_get_info(const bokeh_pipeline *pipeline, bokeh_info *info);
/* 1 when the pipeline is a render-track model that needs bokeh_depth's disparity. */
BOKEH_API int bokeh_needs_depth(const bokeh_pipeline *pipeline);

/* Render width x height pixels (stride: bytes per row; ints per row for ARGB_INT) into
 * out (same format, out_stride). out may be pixels itself with out_stride == stride;
 * any other overlap of out and pixels is refused (BOKEH_ERROR_ARGUMENT). depth: required by a
 * render-track model; a portrait model takes its aperture only (or NULL); refused by the
 * others (NULL). */
BOKEH_API bokeh_status bokeh_render(bokeh_pipeline *pipeline, const void *pixels, int width, int height,
                                    size_t stride, bokeh_format format, void *out, size_t out_stride,
                                    const bokeh_depth *depth);

/* Tap to focus: the median disparity of the 9 x 9 pixels around column x, row y (the
 * sidecar's focus_window), cut at the edges. BOKEH_ERROR_DEPTH when the point is outside
 * the photo or a value in that window is not in [0, 1] (NaN included). */
BOKEH_API bokeh_status bokeh_focus_at(bokeh_pipeline *pipeline, const float *disparity, int width,
                                      int height, int x, int y, float *focus);

/* A depth file's samples (8- or 16-bit grey, map_width x map_height) -> disparity at the
 * photo's size, as bokeh-render's --depth does: min-max normalised (nearest = 1; a constant
 * map is 0.5), then resized to the photo. warning (may be NULL) gets a note when the map
 * was constant or its aspect ratio differs by more than 1% (stretched to fit). */
BOKEH_API bokeh_status bokeh_disparity_from_map(bokeh_pipeline *pipeline, const uint16_t *samples,
                                                int map_width, int map_height, int width, int height,
                                                float *disparity, char *warning, size_t warning_size);

#ifdef __cplusplus
}
#endif

#endif
