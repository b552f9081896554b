/* The export -> runtime contract, checked at open time as runtime/contract.py checks it:
 * the sidecar JSON beside the model (format, version, sha256, track, tensors, Eq. 9
 * post-processing) against the model's own serving_default signature. A portrait-track
 * sidecar also names the person segmenter that feeds the model's `person` input. */
#ifndef BOKEH_CONTRACT_H
#define BOKEH_CONTRACT_H

#include <stddef.h>

#include "model.h"

typedef struct {
    char name[32];
    int rank;                   /* 4: NHWC; 2: a [1, 1] scalar (portrait: person_share) */
    int shape[4];
} bk_output_spec;

typedef struct {
    char track[16];             /* "cpu", "gpu", "render" or "portrait" */
    int height, width;          /* the model input */
    int depth_guided;
    int portrait;               /* inputs image, person, aperture; the segmenter below gives person */
    int person_height, person_width;   /* person [1, h, w, 1]: the segmenter's output as it comes out */
    char segmenter[4096];       /* portrait: the segmenter's path (beside the model), sha256 checked */
    int seg_height, seg_width;  /* portrait: the segmenter's input [1, h, w, 3] */
    int n_outputs;
    bk_output_spec outputs[BK_MAX_TENSORS];
    char source[32];            /* B of Eq. 9 */
    char defocus[32];           /* D of Eq. 9 */
    float eta, tau;
    int gpu_verified;           /* the export ran it right on LiteRT's GPU accelerator */
    char gpu_note[512];         /* why not, when it did not */
    int embedded;               /* read from the model's own metadata: no sidecar JSON beside it */
    char weights[16];           /* "trained", "untrained" or "analytic" ("unknown" if not said) */
    /* The host steps' numbers, from the sidecar's "host" block (docs/contract.md); libbokeh
     * keeps no copy of them. max_aperture is the aperture input's range, in model pixels. */
    double default_aperture, max_aperture, min_person, centre_box, ratio_tolerance;
    int focus_window;
} bk_contract;

/* Sidecar checks that need no model (and the sha256, so a damaged model is refused before
 * LiteRT parses it). Without a sidecar JSON beside the model, the contract embedded in the
 * model (its metadata buffer "bokehlite_contract") is read through LiteRT instead. 0, or
 * BOKEH_ERROR_MODEL with msg. */
int bk_contract_read(LiteRtEnvironment env, const char *model_path, bk_contract *c, char *msg, size_t n);
/* The sidecar's tensors against the compiled model's signature. */
int bk_contract_check(const bk_contract *c, const bk_model *m, const char *model_path, char *msg, size_t n);

/* The portrait model in `folder`: its bokeh_portrait_<H>x<W>.tflite (the default size if
 * there, else the only one), in `model`. A folder holding only the old two-model pipeline's
 * sidecar (format "bokehlite-portrait") is refused. 0, or BOKEH_ERROR_MODEL. */
int bk_portrait_find(const char *folder, char *model, size_t size, char *msg, size_t n);

#endif
