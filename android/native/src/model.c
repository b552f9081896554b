/* One model on LiteRT's CompiledModel, and the accelerator policy.
 *
 * LiteRT's own behaviour shapes the policy (measured with the ai-edge-litert 2.3 wheel):
 * - GPU and CPU requested together with no usable Vulkan/OpenCL device: compiling fails,
 *   with no fallback. So `auto` asks for the GPU alone, then compiles again for the CPU.
 * - GPU requested and the accelerator library not found: the model silently runs on the
 *   CPU and IsFullyAccelerated still says 1. So what ran is judged by
 *   IsNonCpuFullyAccelerated.
 * GPU and CPU settings travel as opaque options with a TOML payload, "gpu_options" and
 * "xnnpack", as LiteRT's own C++ options classes send them. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "bokeh.h"
#include "vulkan.h"

/* XNNPACK flags the Python runtime's `litert` backend passes (runtime/litert_cpu.py):
 * QS8 | QU8 | TRANSIENT_INDIRECTION_BUFFER, the low-memory setting. */
#define XNNPACK_FLAGS 0x23u
#define SIGNATURE_KEY "serving_default"
#define LOCK_RETRIES 4

struct bk_model {
    LiteRtEnvironment env;      /* borrowed */
    LiteRtModel model;
    LiteRtCompiledModel compiled;
    LiteRtParamIndex signature;
    int n_in, n_out;
    bk_tensor_info in[BK_MAX_TENSORS], out[BK_MAX_TENSORS];
    LiteRtRankedTensorType in_type[BK_MAX_TENSORS], out_type[BK_MAX_TENSORS];
    LiteRtTensorBuffer in_buf[BK_MAX_TENSORS], out_buf[BK_MAX_TENSORS];
    int on_gpu, fully, fp16, software_gpu;
    char fallback[1024];
    double load_ms, compile_ms;
};

double bk_now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int fail(char *msg, size_t n, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, n, fmt, ap);
    va_end(ap);
    return status;
}

/* LiteRtGetStatusString is not exported by libLiteRt.so, so we name the codes ourselves. */
static const char *status_name(LiteRtStatus s) {
    switch (s) {
    case kLiteRtStatusOk: return "ok";
    case kLiteRtStatusErrorInvalidArgument: return "invalid argument";
    case kLiteRtStatusErrorMemoryAllocationFailure: return "out of memory";
    case kLiteRtStatusErrorRuntimeFailure: return "runtime failure";
    case kLiteRtStatusErrorUnsupported: return "unsupported";
    case kLiteRtStatusErrorNotFound: return "not found";
    case kLiteRtStatusErrorFileIO: return "file I/O error";
    case kLiteRtStatusErrorInvalidFlatbuffer: return "invalid flatbuffer";
    case kLiteRtStatusErrorDynamicLoading: return "dynamic loading failed";
    case kLiteRtStatusErrorCompilation: return "compilation failed";
    default: return "error";
    }
}

static void free_payload(void *p) { free(p); }

static LiteRtStatus add_opaque(LiteRtOptions options, const char *id, const char *toml) {
    char *payload = strdup(toml);
    if (!payload) return kLiteRtStatusErrorMemoryAllocationFailure;
    LiteRtOpaqueOptions opaque = NULL;
    LiteRtStatus s = LiteRtCreateOpaqueOptions(id, payload, free_payload, &opaque);
    if (s != kLiteRtStatusOk) {
        free(payload);
        return s;
    }
    s = LiteRtAddOpaqueOptions(options, opaque);
    if (s != kLiteRtStatusOk) LiteRtDestroyOpaqueOptions(opaque);
    return s;
}

static void release_compiled(bk_model *m) {
    for (int i = 0; i < BK_MAX_TENSORS; i++) {
        if (m->in_buf[i]) LiteRtDestroyTensorBuffer(m->in_buf[i]);
        if (m->out_buf[i]) LiteRtDestroyTensorBuffer(m->out_buf[i]);
        m->in_buf[i] = m->out_buf[i] = NULL;
    }
    if (m->compiled) LiteRtDestroyCompiledModel(m->compiled);
    m->compiled = NULL;
}

/* Compile for `accelerators` and make the buffers; LiteRT's status, with what failed. */
static LiteRtStatus compile(bk_model *m, int accelerators, const bk_model_options *opt, const char **what) {
    LiteRtOptions options = NULL;
    LiteRtStatus s = LiteRtCreateOptions(&options);
    *what = "creating options";
    if (s != kLiteRtStatusOk) return s;
    s = LiteRtSetOptionsHardwareAccelerators(options, accelerators);
    char toml[128];
    if (s == kLiteRtStatusOk && (accelerators & kLiteRtHwAcceleratorGpu)) {
        snprintf(toml, sizeof toml, "precision = %d\n",
                 opt->gpu_fp16 ? kLiteRtDelegatePrecisionFp16 : kLiteRtDelegatePrecisionFp32);
        s = add_opaque(options, "gpu_options", toml);
    }
    if (s == kLiteRtStatusOk && (accelerators & kLiteRtHwAcceleratorCpu)) {
        if (opt->threads > 0)
            snprintf(toml, sizeof toml, "num_threads = %d\nflags = %u\n", opt->threads, XNNPACK_FLAGS);
        else
            snprintf(toml, sizeof toml, "flags = %u\n", XNNPACK_FLAGS);
        s = add_opaque(options, "xnnpack", toml);
    }
    if (s == kLiteRtStatusOk) {
        *what = "compiling";
        s = LiteRtCreateCompiledModel(m->env, m->model, options, &m->compiled);
    }
    LiteRtDestroyOptions(options);   /* the caller owns the options (litert_compiled_model.h) */
    if (s != kLiteRtStatusOk) {
        m->compiled = NULL;
        return s;
    }
    bool fully = false, non_cpu = false;
    LiteRtCompiledModelIsFullyAccelerated(m->compiled, &fully);
    LiteRtCompiledModelIsNonCpuFullyAccelerated(m->compiled, &non_cpu);
    m->fully = fully;
    m->on_gpu = non_cpu;
    *what = "creating tensor buffers";
    for (int i = 0; i < m->n_in && s == kLiteRtStatusOk; i++) {
        LiteRtTensorBufferRequirements req = NULL;
        s = LiteRtGetCompiledModelInputBufferRequirements(m->compiled, m->signature, (LiteRtParamIndex)i, &req);
        if (s == kLiteRtStatusOk)
            s = LiteRtCreateManagedTensorBufferFromRequirements(m->env, &m->in_type[i], req, &m->in_buf[i]);
    }
    for (int i = 0; i < m->n_out && s == kLiteRtStatusOk; i++) {
        LiteRtTensorBufferRequirements req = NULL;
        s = LiteRtGetCompiledModelOutputBufferRequirements(m->compiled, m->signature, (LiteRtParamIndex)i, &req);
        if (s == kLiteRtStatusOk)
            s = LiteRtCreateManagedTensorBufferFromRequirements(m->env, &m->out_type[i], req, &m->out_buf[i]);
    }
    if (s != kLiteRtStatusOk) release_compiled(m);
    return s;
}

/* ---- a software GPU: waiting for its threads --------------------------------------------
 *
 * A software Vulkan device (SwiftShader) computes on threads it starts in this process, and
 * LiteRT's output lock gives up after 120 s, which a full-size run on it can take: so before
 * reading we wait for the device's threads to go idle (runtime/litert_gpu.py's rule: under a
 * tenth of a core for four 50 ms polls in a row). Only those threads count, never the whole
 * process: another pipeline rendering on the CPU, the app's own threads or this pipeline's
 * host steps must not hold the wait up (a process-wide clock made a 0.4 s render take 6 s,
 * and never end while another thread kept rendering).
 *
 * Which threads are the device's: the ones that appear while a GPU model compiles (measured
 * with SwiftShader: one queue thread per device, and the workers "Thread<NN>", which every
 * device in the process shares and which the first GPU compile starts). Compiles are
 * serialised against a GPU compile (gpu_compile_lock), so threads that another pipeline's
 * compile starts (XNNPACK's pool) are never taken for the device's. A thread is known by its
 * id and its start time, so an id the kernel hands out again later is not mistaken for it.
 * LiteRT's own events are no signal here: after LiteRtRunCompiledModelAsync the WebGPU
 * outputs carry events that report "signaled" at once, while the lock still waits 200 ms.
 *
 * The workers are shared, so two runs on the software device at once would each see the
 * other's work: runs on it are serialised in the process (gpu_run_lock), run and wait
 * together. Those are the only process-wide state in libbokeh. */

#define MAX_GPU_THREADS 64
#define IDLE_POLL_MS 50
#define IDLE_QUIET_POLLS 4
#define IDLE_BUSY_MS 5.0          /* a tenth of a core over one poll */
#define IDLE_GIVE_UP_MS 600000.0  /* a backstop: then read, and let LiteRT's lock wait */

typedef struct {
    pid_t tid;
    unsigned long long start;      /* clock ticks after boot (/proc/self/task/TID/stat field 22) */
} gpu_thread;

static pthread_rwlock_t gpu_compile_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t gpu_threads_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t gpu_run_lock = PTHREAD_MUTEX_INITIALIZER;
static gpu_thread gpu_threads[MAX_GPU_THREADS];
static int n_gpu_threads;

/* The start time of thread `tid` of this process; 0 when it is gone (or /proc is not there). */
static unsigned long long thread_start(pid_t tid) {
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t got = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[got] = 0;
    char *p = strrchr(line, ')');           /* the name before it may hold spaces and ')' */
    if (!p) return 0;
    p++;
    for (int field = 3; field < 22 && p; field++) p = strchr(p + 1, ' ');   /* to field 22 */
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

/* This process's thread ids (malloc'd, *n of them); NULL when /proc/self/task is not there. */
static pid_t *task_ids(int *n) {
    *n = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d) return NULL;
    int cap = 64;
    pid_t *ids = malloc(sizeof(pid_t) * (size_t)cap);
    struct dirent *e;
    while (ids && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        if (*n == cap) {
            pid_t *more = realloc(ids, sizeof(pid_t) * (size_t)(cap *= 2));
            if (!more) {
                free(ids);
                ids = NULL;
                break;
            }
            ids = more;
        }
        ids[(*n)++] = (pid_t)atoi(e->d_name);
    }
    closedir(d);
    if (!ids) *n = 0;
    return ids;
}

/* Keep the threads that are still the ones registered (gpu_threads_lock held). */
static void prune_gpu_threads(void) {
    int k = 0;
    for (int i = 0; i < n_gpu_threads; i++)
        if (thread_start(gpu_threads[i].tid) == gpu_threads[i].start) gpu_threads[k++] = gpu_threads[i];
    n_gpu_threads = k;
}

/* The threads in `after` that are not in `before`: the device's, started by this compile. */
static void register_gpu_threads(const pid_t *before, int n_before, const pid_t *after, int n_after) {
    pthread_mutex_lock(&gpu_threads_lock);
    prune_gpu_threads();
    for (int i = 0; i < n_after; i++) {
        int known = 0;
        for (int j = 0; j < n_before && !known; j++) known = before[j] == after[i];
        for (int j = 0; j < n_gpu_threads && !known; j++) known = gpu_threads[j].tid == after[i];
        unsigned long long start = known ? 0 : thread_start(after[i]);
        if (start && n_gpu_threads < MAX_GPU_THREADS) gpu_threads[n_gpu_threads++] = (gpu_thread){after[i], start};
    }
    pthread_mutex_unlock(&gpu_threads_lock);
}

/* CPU time thread `tid` of this process has used, in ms; < 0 when it is gone. The clock id
 * is the kernel's per-thread CPU clock, as pthread_getcpuclockid makes it (glibc, bionic). */
static double thread_cpu_ms(pid_t tid) {
    clockid_t clock = (clockid_t)((~(unsigned)tid << 3) | 6u);   /* CPUCLOCK_SCHED | CPUCLOCK_PERTHREAD */
    struct timespec t;
    if (clock_gettime(clock, &t)) return -1;
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Return once the GPU device's threads have used under a tenth of a core for four polls in
 * a row (gpu_run_lock held: no other run is on the device). */
static void wait_until_idle(void) {
    gpu_thread threads[MAX_GPU_THREADS];
    double last[MAX_GPU_THREADS];
    pthread_mutex_lock(&gpu_threads_lock);
    prune_gpu_threads();
    int n = n_gpu_threads;
    memcpy(threads, gpu_threads, sizeof(gpu_thread) * (size_t)n);
    pthread_mutex_unlock(&gpu_threads_lock);
    if (!n) return;              /* no thread known: LiteRT's lock is the only wait */
    for (int i = 0; i < n; i++) last[i] = thread_cpu_ms(threads[i].tid);
    const struct timespec poll = {0, IDLE_POLL_MS * 1000000L};
    double t0 = bk_now_ms();
    for (int quiet = 0; quiet < IDLE_QUIET_POLLS && bk_now_ms() - t0 < IDLE_GIVE_UP_MS;) {
        while (nanosleep(&poll, NULL) && errno == EINTR) {}
        double busy = 0;
        for (int i = 0; i < n; i++) {
            if (last[i] < 0) continue;
            double now = thread_cpu_ms(threads[i].tid);
            if (now >= last[i]) busy += now - last[i];
            last[i] = now;
        }
        quiet = busy < IDLE_BUSY_MS ? quiet + 1 : 0;
    }
}

/* compile(), with the threads a GPU compile starts registered as the GPU device's; other
 * compiles run together, but never beside a GPU compile. */
static LiteRtStatus compile_registered(bk_model *m, int accelerators, const bk_model_options *opt, const char **what) {
    if (!(accelerators & kLiteRtHwAcceleratorGpu)) {
        pthread_rwlock_rdlock(&gpu_compile_lock);     /* CPU compiles may run together */
        LiteRtStatus s = compile(m, accelerators, opt, what);
        pthread_rwlock_unlock(&gpu_compile_lock);
        return s;
    }
    pthread_rwlock_wrlock(&gpu_compile_lock);
    int n_before = 0, n_after = 0;
    pid_t *before = task_ids(&n_before);
    LiteRtStatus s = compile(m, accelerators, opt, what);
    pid_t *after = before ? task_ids(&n_after) : NULL;
    if (after) register_gpu_threads(before, n_before, after, n_after);
    pthread_rwlock_unlock(&gpu_compile_lock);
    free(before);
    free(after);
    return s;
}

static int read_tensor(LiteRtTensor t, bk_tensor_info *info, LiteRtRankedTensorType *type, char *msg,
                       size_t n, const char *path) {
    if (LiteRtGetRankedTensorType(t, type) != kLiteRtStatusOk)
        return fail(msg, n, BOKEH_ERROR_MODEL, "%s: tensor %s has no static shape", path, info->name);
    if (type->element_type != kLiteRtElementTypeFloat32)
        return fail(msg, n, BOKEH_ERROR_MODEL, "%s: tensor %s is not float32", path, info->name);
    int rank = (int)type->layout.rank;
    if (rank < 1 || rank > BK_MAX_RANK)
        return fail(msg, n, BOKEH_ERROR_MODEL, "%s: tensor %s has rank %d", path, info->name, rank);
    info->rank = rank;
    info->count = 1;
    for (int d = 0; d < rank; d++) {
        info->dims[d] = type->layout.dimensions[d];
        if (info->dims[d] <= 0)
            return fail(msg, n, BOKEH_ERROR_MODEL, "%s: tensor %s has a dynamic shape", path, info->name);
        info->count *= (size_t)info->dims[d];
    }
    return 0;
}

static int read_signature(bk_model *m, const char *path, char *msg, size_t n) {
    LiteRtParamIndex count = 0;
    if (LiteRtGetNumModelSignatures(m->model, &count) != kLiteRtStatusOk || count == 0)
        return fail(msg, n, BOKEH_ERROR_MODEL, "%s: the model has no signature", path);
    LiteRtSignature sig = NULL;
    for (LiteRtParamIndex i = 0; i < count; i++) {
        LiteRtSignature s = NULL;
        const char *key = NULL;
        if (LiteRtGetModelSignature(m->model, i, &s) == kLiteRtStatusOk &&
            LiteRtGetSignatureKey(s, &key) == kLiteRtStatusOk && key && !strcmp(key, SIGNATURE_KEY)) {
            sig = s;
            m->signature = i;
        }
    }
    if (!sig) return fail(msg, n, BOKEH_ERROR_MODEL, "%s: the model has no '%s' signature", path, SIGNATURE_KEY);
    LiteRtParamIndex nin = 0, nout = 0;
    LiteRtGetNumSignatureInputs(sig, &nin);
    LiteRtGetNumSignatureOutputs(sig, &nout);
    if (nin < 1 || nin > BK_MAX_TENSORS || nout < 1 || nout > BK_MAX_TENSORS)
        return fail(msg, n, BOKEH_ERROR_MODEL, "%s: unexpected signature with %zu inputs, %zu outputs", path,
                    (size_t)nin, (size_t)nout);
    m->n_in = (int)nin;
    m->n_out = (int)nout;
    for (int io = 0; io < 2; io++) {
        int k = io ? m->n_out : m->n_in;
        for (int i = 0; i < k; i++) {
            const char *name = NULL;
            LiteRtTensor t = NULL;
            LiteRtStatus s = io ? LiteRtGetSignatureOutputName(sig, (LiteRtParamIndex)i, &name)
                                : LiteRtGetSignatureInputName(sig, (LiteRtParamIndex)i, &name);
            if (s == kLiteRtStatusOk)
                s = io ? LiteRtGetSignatureOutputTensorByIndex(sig, (LiteRtParamIndex)i, &t)
                       : LiteRtGetSignatureInputTensorByIndex(sig, (LiteRtParamIndex)i, &t);
            if (s != kLiteRtStatusOk || !name)
                return fail(msg, n, BOKEH_ERROR_MODEL, "%s: cannot read the signature (%s)", path, status_name(s));
            bk_tensor_info *info = io ? &m->out[i] : &m->in[i];
            snprintf(info->name, sizeof info->name, "%s", name);
            int r = read_tensor(t, info, io ? &m->out_type[i] : &m->in_type[i], msg, n, path);
            if (r) return r;
        }
    }
    return 0;
}

int bk_model_open(LiteRtEnvironment env, const char *path, const bk_model_options *opt, bk_model **out,
                  char *msg, size_t n) {
    *out = NULL;
    bk_model *m = calloc(1, sizeof *m);
    if (!m) return fail(msg, n, BOKEH_ERROR_MEMORY, "out of memory");
    m->env = env;
    m->software_gpu = opt->software_gpu;
    double t0 = bk_now_ms();
    LiteRtStatus s = LiteRtCreateModelFromFile(env, path, &m->model);
    if (s != kLiteRtStatusOk) {
        free(m);
        return fail(msg, n, BOKEH_ERROR_MODEL, "%s: not a loadable TFLite model (%s)", path, status_name(s));
    }
    int r = read_signature(m, path, msg, n);
    if (r) {
        bk_model_close(m);
        return r;
    }
    m->load_ms = bk_now_ms() - t0;
    t0 = bk_now_ms();
    const char *what = "";
    if (opt->accelerator == BOKEH_ACCELERATOR_AUTO && opt->cpu_reason)
        snprintf(m->fallback, sizeof m->fallback, "%s", opt->cpu_reason);
    else if (opt->accelerator != BOKEH_ACCELERATOR_CPU) {
        s = compile_registered(m, kLiteRtHwAcceleratorGpu, opt, &what);
        bool fp16_ok = true;
        if (s == kLiteRtStatusOk && m->on_gpu && opt->gpu_fp16 &&
            (LiteRtEnvironmentSupportsFP16(env, &fp16_ok) != kLiteRtStatusOk || !fp16_ok)) {
            /* Measured on SwiftShader: its WebGPU device has no shader-f16, LiteRT still emits
             * f16 kernels, they fail validation, and the outputs are garbage (19 dB). */
            release_compiled(m);
            bk_model_options fp32 = *opt;
            fp32.gpu_fp16 = 0;
            s = compile_registered(m, kLiteRtHwAcceleratorGpu, &fp32, &what);
            snprintf(m->fallback, sizeof m->fallback, "fp16: this GPU has no float16 shaders, so fp32 runs");
        } else if (s == kLiteRtStatusOk) {
            m->fp16 = opt->gpu_fp16;
        }
        if (s == kLiteRtStatusOk && !m->on_gpu) {
            /* The accelerator library was not found: LiteRT compiled for its CPU instead. */
            release_compiled(m);
            s = kLiteRtStatusErrorUnsupported;
            what = "finding the GPU accelerator (LiteRT fell back to its CPU)";
        }
        if (s != kLiteRtStatusOk) {
            /* LiteRT says only "runtime failure" when there is no Vulkan device to compile for:
             * name the missing driver or loader, as bokeh-render does. */
            char why[768];
            if (strcmp(what, "compiling") || !bk_vulkan_missing(why, sizeof why))
                snprintf(why, sizeof why, "%s failed (%s)", what, status_name(s));
            if (opt->accelerator == BOKEH_ACCELERATOR_GPU) {
                bk_model_close(m);
                return fail(msg, n, BOKEH_ERROR_ACCELERATOR, "%s: LiteRT's GPU accelerator cannot run it here: %s; "
                            "use the CPU (--accelerator cpu or auto)", path, why);
            }
            snprintf(m->fallback, sizeof m->fallback, "GPU: %s", why);
        }
    }
    if (!m->compiled) {
        s = compile_registered(m, kLiteRtHwAcceleratorCpu, opt, &what);
        if (s != kLiteRtStatusOk) {
            bk_model_close(m);
            return fail(msg, n, BOKEH_ERROR_MODEL, "%s: LiteRT cannot run it on the CPU: %s failed (%s)", path,
                        what, status_name(s));
        }
        m->on_gpu = 0;
    }
    m->compile_ms = bk_now_ms() - t0;
    *out = m;
    return 0;
}

void bk_model_close(bk_model *m) {
    if (!m) return;
    release_compiled(m);
    if (m->model) LiteRtDestroyModel(m->model);
    free(m);
}

int bk_model_num_inputs(const bk_model *m) { return m->n_in; }
int bk_model_num_outputs(const bk_model *m) { return m->n_out; }
const bk_tensor_info *bk_model_input(const bk_model *m, int i) { return &m->in[i]; }
const bk_tensor_info *bk_model_output(const bk_model *m, int i) { return &m->out[i]; }

int bk_model_find_input(const bk_model *m, const char *name) {
    for (int i = 0; i < m->n_in; i++) if (!strcmp(m->in[i].name, name)) return i;
    return -1;
}

int bk_model_find_output(const bk_model *m, const char *name) {
    for (int i = 0; i < m->n_out; i++) if (!strcmp(m->out[i].name, name)) return i;
    return -1;
}

static int copy_buffer(LiteRtTensorBuffer buf, void *data, size_t bytes, int writing, char *msg, size_t n) {
    size_t size = 0;
    void *host = NULL;
    if (LiteRtGetTensorBufferSize(buf, &size) != kLiteRtStatusOk || size < bytes)
        return fail(msg, n, BOKEH_ERROR_RUNTIME, "LiteRT tensor buffer of %zu bytes, expected %zu", size, bytes);
    LiteRtTensorBufferLockMode mode = writing ? kLiteRtTensorBufferLockModeWrite : kLiteRtTensorBufferLockModeRead;
    LiteRtStatus s = LiteRtLockTensorBuffer(buf, &host, mode);
    LiteRtTensorBufferType type = kLiteRtTensorBufferTypeHostMemory;
    LiteRtGetTensorBufferType(buf, &type);
    /* Locking a GPU buffer waits for the run at most 120 s (measured); a software device
     * (SwiftShader) needs about that for the full-size gpu track, so we wait again. */
    for (int retry = 0; s != kLiteRtStatusOk && type != kLiteRtTensorBufferTypeHostMemory && retry < LOCK_RETRIES;
         retry++)
        s = LiteRtLockTensorBuffer(buf, &host, mode);
    if (s != kLiteRtStatusOk || !host)
        return fail(msg, n, BOKEH_ERROR_RUNTIME, "cannot lock a LiteRT tensor buffer (%s)", status_name(s));
    if (writing) memcpy(host, data, bytes);
    else memcpy(data, host, bytes);
    LiteRtUnlockTensorBuffer(buf);
    return 0;
}

int bk_model_write(bk_model *m, int i, const float *data, char *msg, size_t n) {
    return copy_buffer(m->in_buf[i], (void *)data, m->in[i].count * sizeof(float), 1, msg, n);
}

int bk_model_read(bk_model *m, int i, float *data, char *msg, size_t n) {
    return copy_buffer(m->out_buf[i], data, m->out[i].count * sizeof(float), 0, msg, n);
}

int bk_model_run(bk_model *m, char *msg, size_t n) {
    if (m->on_gpu && m->software_gpu) pthread_mutex_lock(&gpu_run_lock);
    LiteRtStatus s = LiteRtRunCompiledModel(m->compiled, m->signature, (size_t)m->n_in, m->in_buf,
                                            (size_t)m->n_out, m->out_buf);
    if (s == kLiteRtStatusOk && m->on_gpu && m->software_gpu) wait_until_idle();
    if (m->on_gpu && m->software_gpu) pthread_mutex_unlock(&gpu_run_lock);
    if (s != kLiteRtStatusOk)
        return fail(msg, n, BOKEH_ERROR_RUNTIME, "LiteRT failed to run the model (%s)", status_name(s));
    return 0;
}

int bk_model_on_gpu(const bk_model *m) { return m->on_gpu; }
int bk_model_fully_accelerated(const bk_model *m) { return m->on_gpu ? 1 : m->fully; }
const char *bk_model_fallback_reason(const bk_model *m) { return m->fallback; }
int bk_model_gpu_fp16(const bk_model *m) { return m->on_gpu ? m->fp16 : -1; }
double bk_model_load_ms(const bk_model *m) { return m->load_ms; }
double bk_model_compile_ms(const bk_model *m) { return m->compile_ms; }
