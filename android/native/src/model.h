/* One .tflite on LiteRT's CompiledModel: open on an accelerator, named float32 inputs and
 * outputs, run. The accelerator choice and its fallbacks live here (see model.c). */
#ifndef BOKEH_MODEL_H
#define BOKEH_MODEL_H

#include <stddef.h>

#include "litert_abi.h"

#define BK_MAX_TENSORS 8
#define BK_MAX_RANK 4

typedef struct {
    char name[64];
    int rank;
    int dims[BK_MAX_RANK];
    size_t count;              /* elements */
} bk_tensor_info;

typedef struct bk_model bk_model;

typedef struct {
    int accelerator;           /* BOKEH_ACCELERATOR_* */
    int gpu_fp16;              /* GPU precision: 1 fp16, 0 fp32 */
    int threads;               /* CPU threads; 0: LiteRT decides */
    const char *cpu_reason;    /* non-NULL: `auto` goes straight to the CPU, for this reason */
    int software_gpu;          /* see bokeh_options */
} bk_model_options;

/* Open and compile `path` in `env`; 0 on success, else a BOKEH_ERROR_* with `msg` filled. */
int bk_model_open(LiteRtEnvironment env, const char *path, const bk_model_options *opt, bk_model **out,
                  char *msg, size_t msg_size);
void bk_model_close(bk_model *m);

int bk_model_num_inputs(const bk_model *m);
int bk_model_num_outputs(const bk_model *m);
const bk_tensor_info *bk_model_input(const bk_model *m, int i);
const bk_tensor_info *bk_model_output(const bk_model *m, int i);
int bk_model_find_input(const bk_model *m, const char *name);
int bk_model_find_output(const bk_model *m, const char *name);

int bk_model_write(bk_model *m, int input, const float *data, char *msg, size_t msg_size);
int bk_model_run(bk_model *m, char *msg, size_t msg_size);
/* Copy output `i` (count floats) into `data`. */
int bk_model_read(bk_model *m, int output, float *data, char *msg, size_t msg_size);

/* What ran: 1 when LiteRT reports every op on the GPU, 0 on the CPU. */
int bk_model_on_gpu(const bk_model *m);
int bk_model_fully_accelerated(const bk_model *m);
/* Why `auto` fell back to the CPU ("" when it did not). */
const char *bk_model_fallback_reason(const bk_model *m);
/* The GPU precision that runs: 1 fp16, 0 fp32 (fp16 falls back to fp32 on a GPU without
 * float16 shaders); -1 on the CPU. */
int bk_model_gpu_fp16(const bk_model *m);
double bk_model_load_ms(const bk_model *m);
double bk_model_compile_ms(const bk_model *m);

double bk_now_ms(void);

#endif
