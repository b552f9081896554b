/* Two pipelines on two threads: does a render on the software GPU (SwiftShader) finish while
 * another pipeline keeps rendering on another thread?
 *
 *     api_two_pipelines GPU_MODEL OTHER_MODEL cpu|gpu
 *
 * Opens GPU_MODEL on the GPU (software_gpu = 1) and OTHER_MODEL on the CPU (cpu) or on the
 * software GPU too (gpu). Times GPU_MODEL's render alone (median of 3), then again while a
 * second thread renders OTHER_MODEL in a loop. A render that has not finished after
 * 20 x alone + 20 s is reported as hung (exit 3). Prints one line:
 *     alone_ms=A busy_ms=B other_alone_ms=C other_renders=N
 * where N counts the other thread's renders that ended while the GPU renders ran. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bokeh.h"

enum { W = 384, H = 256, RUNS = 3 };

static uint8_t photo[W * H * 4], out_a[W * H * 4], out_b[W * H * 4];
static bokeh_pipeline *a, *b;
static atomic_int stop, other_renders, failed;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static int done;
static double busy_ms[RUNS];

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int render(bokeh_pipeline *p, uint8_t *out) {
    if (bokeh_render(p, photo, W, H, W * 4, BOKEH_FORMAT_RGBA8888, out, W * 4, NULL) != BOKEH_OK) {
        fprintf(stderr, "render failed: %s\n", bokeh_message(p));
        failed = 1;
        return 1;
    }
    return 0;
}

static int cmp(const void *x, const void *y) {
    double d = *(const double *)x - *(const double *)y;
    return (d > 0) - (d < 0);
}

static double median_alone(bokeh_pipeline *p, uint8_t *out) {
    double t[RUNS];
    for (int i = 0; i < RUNS; i++) {
        double t0 = now_ms();
        if (render(p, out)) exit(1);
        t[i] = now_ms() - t0;
    }
    qsort(t, RUNS, sizeof t[0], cmp);
    return t[RUNS / 2];
}

static void *other_loop(void *arg) {
    (void)arg;
    while (!stop && !failed) {
        if (render(b, out_b)) break;
        other_renders++;
    }
    return NULL;
}

static void *gpu_renders(void *arg) {
    (void)arg;
    for (int i = 0; i < RUNS && !failed; i++) {
        double t0 = now_ms();
        if (render(a, out_a)) break;
        busy_ms[i] = now_ms() - t0;
    }
    pthread_mutex_lock(&lock);
    done = 1;
    pthread_cond_signal(&done_cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static bokeh_pipeline *open_or_die(const char *path, int accelerator) {
    bokeh_options o;
    bokeh_options_init(&o);
    o.accelerator = accelerator;
    o.software_gpu = 1;
    o.threads = 1;
    bokeh_pipeline *p = NULL;
    if (bokeh_open(path, &o, &p) != BOKEH_OK) {
        fprintf(stderr, "%s: %s\n", path, bokeh_message(p));
        exit(1);
    }
    return p;
}

int main(int argc, char **argv) {
    if (argc != 4 || (strcmp(argv[3], "cpu") && strcmp(argv[3], "gpu"))) {
        fprintf(stderr, "usage: api_two_pipelines GPU_MODEL OTHER_MODEL cpu|gpu\n");
        return 2;
    }
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *q = photo + ((size_t)y * W + x) * 4;
            q[0] = (uint8_t)(x * 255 / W), q[1] = (uint8_t)(y * 255 / H), q[2] = (uint8_t)((x ^ y) & 255), q[3] = 255;
        }
    a = open_or_die(argv[1], BOKEH_ACCELERATOR_GPU);
    b = open_or_die(argv[2], strcmp(argv[3], "gpu") ? BOKEH_ACCELERATOR_CPU : BOKEH_ACCELERATOR_GPU);
    if (render(a, out_a) || render(b, out_b)) return 1;          /* first runs: compile shaders */
    double alone = median_alone(a, out_a), other_alone = median_alone(b, out_b);

    pthread_t other, gpu;
    if (pthread_create(&other, NULL, other_loop, NULL)) return 1;
    const struct timespec ms = {0, 1000000L};
    while (!other_renders && !failed) nanosleep(&ms, NULL);      /* the other thread is rendering */
    int before = other_renders;
    if (pthread_create(&gpu, NULL, gpu_renders, NULL)) return 1;
    double limit_ms = 20 * alone + 20000;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(limit_ms / 1000) + 1;
    pthread_mutex_lock(&lock);
    int timed_out = 0;
    while (!done && !timed_out) timed_out = pthread_cond_timedwait(&done_cond, &lock, &until) != 0;
    pthread_mutex_unlock(&lock);
    int during = other_renders - before;
    if (timed_out) {
        printf("hung: the GPU render did not finish in %.0f ms (alone %.1f ms) while the other thread rendered "
               "%d times\n", limit_ms, alone, during);
        fflush(stdout);
        _Exit(3);
    }
    stop = 1;
    pthread_join(gpu, NULL);
    pthread_join(other, NULL);
    if (failed) return 1;
    qsort(busy_ms, RUNS, sizeof busy_ms[0], cmp);
    printf("alone_ms=%.1f busy_ms=%.1f other_alone_ms=%.1f other_renders=%d\n", alone, busy_ms[RUNS / 2], other_alone,
           during);
    bokeh_close(a);
    bokeh_close(b);
    return 0;
}
