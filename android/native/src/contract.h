/* The export -> runtime contract, checked at open time as runtime/contract.py checks it:
 * the sidecar JSON beside the model (format, version, sha256, track, tensors, Eq. 9
 * post-processing) against the model's own serving_default signature. And the portrait
 * pipeline's sidecar (runtime/portrait.py). */
#ifndef BOKEH_CONTRACT_H
#define BOKEH_CONTRACT_H

#include <stddef.h>

#include "model.h"

typedef struct {
    char name[32];
    int shape[4];
} bk_output_spec;

typedef struct {
    char track[16];             /* "cpu", "gpu" or "render" */
    int height, width;          /* the model input */
    int depth_guided;
    int n_outputs;
    bk_output_spec outputs[BK_MAX_TENSORS];
    char source[32];            /* B of Eq. 9 */
    char defocus[32];           /* D of Eq. 9 */
    float eta, tau;
    int gpu_verified;           /* the export ran it right on LiteRT's GPU accelerator */
    char gpu_note[256];         /* why not, when it did not */
} bk_contract;

/* Sidecar checks that need no model (and the sha256, so a damaged model is refused before
 * LiteRT parses it). 0, or BOKEH_ERROR_MODEL with msg. */
int bk_contract_read(const char *model_path, bk_contract *c, char *msg, size_t n);
/* The sidecar's tensors against the compiled model's signature. */
int bk_contract_check(const bk_contract *c, const bk_model *m, const char *model_path, char *msg, size_t n);

typedef struct {
    char sidecar[4096];
    char segmenter[4096], render[4096];   /* paths of the two models */
    int seg_height, seg_width;
} bk_portrait_spec;

/* `folder` (or a bokeh_portrait_*.json inside one) -> the pipeline's files, checked. */
int bk_portrait_read(const char *folder, bk_portrait_spec *spec, char *msg, size_t n);

#endif
