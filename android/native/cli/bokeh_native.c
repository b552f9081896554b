/* bokeh-native: libbokeh from the command line, as bokeh-render is the Python runtime's.
 * One photo in, one out; a report with --json. Exit codes: 0 rendered, 2 bad usage or
 * input (one line on stderr, nothing written), 1 internal error. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "bokeh.h"
#include "image_io.h"

#define PROG "bokeh-native"
#define DEFAULT_MAX_PIXELS 100000000LL   /* bokeh-render's --max-pixels default */
#define EXIT_INTERNAL 1
#define EXIT_BAD_INPUT 2

static const char USAGE[] =
    "usage: " PROG " (-m MODEL.tflite | --portrait DIR) [options] IN OUT\n"
    "\n"
    "Render learned bokeh on one photo with libbokeh (LiteRT's C API), as bokeh-render does.\n"
    "\n"
    "  -m MODEL.tflite         an exported model with its sidecar .json (cpu, gpu, render or portrait track)\n"
    "  --portrait DIR          the portrait model in DIR, with its segmenter (export-tflite --track portrait)\n"
    "  --depth FILE            render track: the photo's disparity map, a grey 8/16-bit PNG (larger = nearer)\n"
    "  --focus X,Y             focus where column X, row Y is (median of 9x9 px; default: the central 10%)\n"
    "  --focus-disparity V     focus on disparity V in [0, 1]\n"
    "  --aperture A            blur radius in photo pixels per unit |disparity - focus| (default 20)\n"
    "  --accelerator auto|cpu|gpu   auto: the GPU if the export verified the model there and it takes\n"
    "                          the whole model, else the CPU (default); gpu refuses any other (the cpu track)\n"
    "  --gpu-precision fp32|fp16    GPU arithmetic (default fp32)\n"
    "  --threads N             CPU threads (default: LiteRT's)\n"
    "  --max-pixels N          refuse photos with more pixels (default 100000000)\n"
    "  --runs N                render N times; the report's steady run is the mean of runs 2..N (default 1)\n"
    "  --json                  print a report on stdout\n"
    "\n"
    "IN and OUT are PNG (8- or 16-bit) or JPEG (grey, colour or CMYK), format by extension; OUT is\n"
    "never IN. The colour profile and EXIF go from IN into OUT. A GPU needs a Vulkan driver on\n"
    "desktop Linux (SwiftShader: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json).\n"
    "\n"
    "examples:\n"
    "  " PROG " -m bokeh_gpu_1024x1536.tflite photo.jpg out.jpg\n"
    "  " PROG " --portrait artifacts/ portrait.png out.png --aperture 30\n"
    "  " PROG " -m bokeh_render_1024x1536.tflite --depth d.png --focus 610,380 --aperture 40 in.png out.png\n"
    "  " PROG " -m bokeh_cpu_1024x1536.tflite --accelerator cpu --threads 4 --json in.png out.png\n";

/* Our output and messages: stdout and stderr as they were at start. LiteRT's and TFLite's
 * own log lines go to /dev/null unless BOKEH_NATIVE_VERBOSE is set: TFLite prints "INFO:
 * Created TensorFlow Lite XNNPACK delegate" whatever the LiteRT logger's level, and the GPU
 * accelerator logs on stdout, which would break --json and the one-line error rule. */
static FILE *messages, *output;

static FILE *divert(int fd, FILE *stream) {
    int saved = dup(fd), null = open("/dev/null", O_WRONLY);
    FILE *f = saved >= 0 ? fdopen(saved, "w") : NULL;
    if (!f || null < 0) {
        if (f) fclose(f);
        else if (saved >= 0) close(saved);
        if (null >= 0) close(null);
        return stream;
    }
    fflush(stream);
    dup2(null, fd);
    close(null);
    setvbuf(f, NULL, fd == 2 ? _IONBF : _IOFBF, 0);
    return f;
}

static void quiet_runtime_logs(void) {
    messages = stderr;
    output = stdout;
    if (getenv("BOKEH_NATIVE_VERBOSE")) return;
    messages = divert(2, stderr);
    output = divert(1, stdout);
}

static int bad(const char *fmt, const char *a, const char *b) {
    fprintf(messages, PROG ": error: ");
    fprintf(messages, fmt, a, b);
    fputc('\n', messages);
    return EXIT_BAD_INPUT;
}

/* A number as Python's float() reads it (bokeh-render's arguments): surrounding white space,
 * underscores between digits, inf and nan; no hexadecimal. */
static int parse_number(const char *text, double *out) {
    char clean[256];
    size_t k = 0;
    const char *s = text, *e = text + strlen(text);
    while (s < e && isspace((unsigned char)*s)) s++;
    while (e > s && isspace((unsigned char)e[-1])) e--;
    for (const char *c = s; c < e; c++) {
        if (*c == '_') {
            if (c == s || c + 1 == e || !isdigit((unsigned char)c[-1]) || !isdigit((unsigned char)c[1])) return -1;
            continue;
        }
        if (*c == 'x' || *c == 'X' || *c == '(' || k + 1 >= sizeof clean) return -1;
        clean[k++] = *c;
    }
    clean[k] = 0;
    char *end;
    double v = strtod(clean, &end);     /* out of range: +-inf or 0, as float() gives */
    if (!k || *end) return -1;
    *out = v;
    return 0;
}

/* A whole number as Python's int() reads it: white space, a sign, underscores between digits. */
static int parse_int(const char *s, const char *e, long long *out) {
    while (s < e && isspace((unsigned char)*s)) s++;
    while (e > s && isspace((unsigned char)e[-1])) e--;
    int negative = s < e && *s == '-';
    if (s < e && (*s == '-' || *s == '+')) s++;
    if (s == e) return -1;
    long long v = 0;
    for (const char *c = s; c < e; c++) {
        if (*c == '_' && c > s && c + 1 < e && isdigit((unsigned char)c[-1]) && isdigit((unsigned char)c[1])) continue;
        if (!isdigit((unsigned char)*c)) return -1;
        v = v > (1LL << 40) ? v : v * 10 + (*c - '0');     /* saturates: any such value is refused */
    }
    *out = negative ? -v : v;
    return 0;
}

static int parse_long(const char *text, long long lo, long long hi, long long *out) {
    double v;
    if (parse_number(text, &v) || v != floor(v) || !(v >= lo && v <= hi)) return -1;
    *out = (long long)v;
    return 0;
}

/* Whether a and b are the same file, by whichever paths (links included). */
static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return a && b && !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static double peak_rss_mb(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss / 1024.0;   /* kB on Linux */
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void fputc_out(int c) { fputc(c, output); }

static void json_string(const char *s) {
    fputc_out('"');
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(output, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(output, "\\u%04x", *s);
        else fputc_out(*s);
    }
    fputc_out('"');
}

static void json_ms(const char *key, double v, int last) {
    fprintf(output, "    \"%s\": ", key);
    if (isnan(v)) fprintf(output, "null");
    else fprintf(output, "%.3f", v);
    fprintf(output, last ? "\n" : ",\n");
}

/* A 16-bit photo is rendered from its 8-bit rounding (v / 257), libbokeh taking 8-bit pixels. */
static uint8_t *to_8bit(const bk_image *img) {
    size_t n = (size_t)img->width * img->height * img->channels;
    const uint16_t *v = (const uint16_t *)img->pixels;
    uint8_t *o = malloc(n ? n : 1);
    for (size_t i = 0; o && i < n; i++) o[i] = (uint8_t)((v[i] + 128u) / 257u);
    return o;
}

/* The result of a 16-bit photo, written 16-bit as bokeh-render writes it: each value times 257,
 * and the photo's own alpha kept whole (libbokeh copies alpha through). */
static uint16_t *to_16bit(const uint8_t *result, const bk_image *img) {
    size_t n = (size_t)img->width * img->height * img->channels;
    const uint16_t *photo = (const uint16_t *)img->pixels;
    uint16_t *o = malloc(sizeof(uint16_t) * (n ? n : 1));
    for (size_t i = 0; o && i < n; i++)
        o[i] = img->channels == 4 && i % 4 == 3 ? photo[i] : (uint16_t)(result[i] * 257u);
    return o;
}

/* The depth map (--depth) as disparity at the photo's size; 0, or the exit code. */
static int read_depth(bokeh_pipeline *p, const char *path, long long max_pixels, int w, int h, float **out,
                      char *warning, size_t warning_size) {
    bk_image d;
    char why[512];
    if (bk_image_read(path, max_pixels, &d, why, sizeof why)) return bad("depth map %s: %s", path, why);
    size_t n = (size_t)d.width * d.height;
    uint16_t *samples = malloc(sizeof(uint16_t) * n);
    *out = malloc(sizeof(float) * (size_t)w * h);
    if (!samples || !*out) {
        bk_image_free(&d);
        free(samples);
        fprintf(messages, PROG ": error: out of memory\n");
        return EXIT_INTERNAL;
    }
    for (size_t i = 0; i < n; i++) {
        size_t k = i * d.channels;
        unsigned v[3];
        for (int c = 0; c < 3; c++) {
            size_t j = k + (d.channels >= 3 ? (size_t)c : 0);
            v[c] = d.bits == 16 ? ((uint16_t *)d.pixels)[j] : d.pixels[j];
        }
        if (v[0] != v[1] || v[0] != v[2]) {
            bk_image_free(&d);
            free(samples);
            return bad("depth map %s: is a colour image (its R, G and B differ); expected one channel of depth: "
                       "a grey 8- or 16-bit PNG%s", path, "");
        }
        samples[i] = (uint16_t)v[0];
    }
    bokeh_status s = bokeh_disparity_from_map(p, samples, d.width, d.height, w, h, *out, warning, warning_size);
    bk_image_free(&d);
    free(samples);
    if (s != BOKEH_OK) return bad("depth map %s: %s", path, bokeh_message(p));
    return 0;
}

int main(int argc, char **argv) {
    const char *model = NULL, *portrait = NULL, *depth_path = NULL, *in = NULL, *out = NULL, *focus_text = NULL;
    double focus_disparity = NAN, aperture = NAN;
    long long max_pixels = DEFAULT_MAX_PIXELS, threads = 0, runs = 1;
    int json = 0, fx = -1, fy = -1;      /* --focus X,Y: column fx, row fy */
    bokeh_options opt;
    bokeh_options_init(&opt);
    quiet_runtime_logs();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define VALUE()                                                            \
    do {                                                                   \
        if (!v) return bad("argument %s: expected one argument", a, ""); \
        i++;                                                               \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(USAGE, output);
            fflush(output);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            VALUE();
            model = v;
        } else if (!strcmp(a, "--portrait")) {
            VALUE();
            portrait = v;
        } else if (!strcmp(a, "--depth")) {
            VALUE();
            depth_path = v;
        } else if (!strcmp(a, "--focus")) {
            VALUE();
            /* two whole numbers and one comma between them, as bokeh-render's --focus: "5," is no point */
            const char *comma = strchr(v, ',');
            long long x = -1, y = -1;
            if (!comma || strchr(comma + 1, ',') || parse_int(v, comma, &x) ||
                parse_int(comma + 1, comma + strlen(comma), &y) || x < 0 || y < 0 || x > 1 << 30 || y > 1 << 30)
                return bad("argument --focus: expected X,Y pixel coordinates (column,row), got '%s'%s", v, "");
            focus_text = v;
            fx = (int)x;
            fy = (int)y;
        } else if (!strcmp(a, "--focus-disparity")) {
            VALUE();
            if (parse_number(v, &focus_disparity) || !(focus_disparity >= 0 && focus_disparity <= 1))
                return bad("argument --focus-disparity: expected a finite number from 0 to 1, got '%s'%s", v, "");
        } else if (!strcmp(a, "--aperture")) {
            VALUE();
            if (parse_number(v, &aperture) || !isfinite(aperture) || !(aperture >= 0))
                return bad("argument --aperture: expected a finite number of at least 0, got '%s'%s", v, "");
        } else if (!strcmp(a, "--accelerator")) {
            VALUE();
            if (!strcmp(v, "auto")) opt.accelerator = BOKEH_ACCELERATOR_AUTO;
            else if (!strcmp(v, "cpu")) opt.accelerator = BOKEH_ACCELERATOR_CPU;
            else if (!strcmp(v, "gpu")) opt.accelerator = BOKEH_ACCELERATOR_GPU;
            else return bad("argument --accelerator: invalid choice: '%s' (choose from auto, cpu, gpu)%s", v, "");
        } else if (!strcmp(a, "--gpu-precision")) {
            VALUE();
            if (!strcmp(v, "fp32")) opt.gpu_precision = BOKEH_GPU_FP32;
            else if (!strcmp(v, "fp16")) opt.gpu_precision = BOKEH_GPU_FP16;
            else return bad("argument --gpu-precision: invalid choice: '%s' (choose from fp32, fp16)%s", v, "");
        } else if (!strcmp(a, "--threads")) {
            VALUE();
            if (parse_long(v, 1, 1024, &threads)) return bad("argument --threads: expected a positive integer, got '%s'%s", v, "");
        } else if (!strcmp(a, "--max-pixels")) {
            VALUE();
            if (parse_long(v, 1, 1LL << 50, &max_pixels))
                return bad("argument --max-pixels: expected a positive integer, got '%s'%s", v, "");
        } else if (!strcmp(a, "--runs")) {
            VALUE();
            if (parse_long(v, 1, 1000, &runs)) return bad("argument --runs: expected a positive integer, got '%s'%s", v, "");
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (a[0] == '-' && a[1]) {
            return bad("unrecognized argument: %s%s", a, "");
        } else if (!in) {
            in = a;
        } else if (!out) {
            out = a;
        } else {
            return bad("unrecognized argument: %s%s", a, "");
        }
    }
    if (!in || !out) return bad("expected IN and OUT (see --help)%s%s", "", "");
    if (!model == !portrait) return bad("give one of -m MODEL.tflite and --portrait DIR%s%s", "", "");
    if (portrait && (depth_path || focus_text || !isnan(focus_disparity)))
        return bad("%s does not go with --portrait: the portrait model derives the depth and the focus%s",
                   depth_path ? "--depth" : focus_text ? "--focus" : "--focus-disparity", "");
    if (focus_text && !isnan(focus_disparity))
        return bad("argument --focus-disparity: not allowed with argument --focus%s%s", "", "");
    if (!bk_image_format(out)) return bad("%s: unknown output format (expected .png, .jpg or .jpeg)%s", out, "");
    /* The output replaces whatever OUT names: never the photo, nor the depth map, by any path. */
    if (same_file(out, in) || same_file(out, depth_path))
        return bad("output %s would overwrite an input (%s); choose another OUT", out,
                   same_file(out, in) ? in : depth_path);
    opt.threads = (int)threads;
    /* SwiftShader, a software Vulkan device, is reached by naming its ICD. */
    const char *icd = getenv("VK_ICD_FILENAMES") ? getenv("VK_ICD_FILENAMES") : getenv("VK_DRIVER_FILES");
    opt.software_gpu = icd && strstr(icd, "swiftshader") != NULL;

    /* Compiling for a GPU takes minutes on a software one: a terminal hears why it waits before
     * it waits (bokeh-render's note); a script's stderr keeps its one line per problem. */
    if (opt.accelerator != BOKEH_ACCELERATOR_CPU && isatty(fileno(messages))) {
        const char *where = opt.accelerator == BOKEH_ACCELERATOR_AUTO ? " where its export verified it" : "";
        fprintf(messages, PROG ": compiling %s%s for LiteRT's GPU accelerator%s (on a software GPU such as "
                "SwiftShader, minutes for a full-size model)\n", model ? "" : "the portrait pipeline in ",
                model ? model : portrait, where);
    }
    bokeh_pipeline *p = NULL;
    bokeh_status s = bokeh_open(model ? model : portrait, &opt, &p);
    if (s != BOKEH_OK) {
        int code = s == BOKEH_ERROR_MEMORY || s == BOKEH_ERROR_RUNTIME ? EXIT_INTERNAL : EXIT_BAD_INPUT;
        fprintf(messages, PROG ": error: %s\n", bokeh_message(p));
        bokeh_close(p);
        return code;
    }
    int needs_depth = bokeh_needs_depth(p);
    bokeh_info info;
    bokeh_get_info(p, &info);
    int is_portrait = !strcmp(info.track, "portrait");     /* --portrait DIR, or -m a portrait model */
    int code = 0;
    if (is_portrait && (depth_path || focus_text || !isnan(focus_disparity)))
        code = bad("%s does not go with a portrait model: it derives the depth and the focus%s",
                   depth_path ? "--depth" : focus_text ? "--focus" : "--focus-disparity", "");
    else if (needs_depth && !depth_path)
        code = bad("%s is a depth-guided (render-track) model: give the photo's disparity map with --depth FILE%s",
                   model, "");
    else if (!needs_depth && depth_path)
        code = bad("--depth needs a depth-guided model (export-tflite --track render); %s is not one%s",
                   model ? model : portrait, "");
    else if (!needs_depth && !is_portrait && (focus_text || !isnan(focus_disparity) || !isnan(aperture)))
        code = bad("%s goes with --depth FILE (a depth-guided model and the photo's disparity map); %s is not one",
                   focus_text ? "--focus" : !isnan(focus_disparity) ? "--focus-disparity" : "--aperture", model);
    if (code) {
        bokeh_close(p);
        return code;
    }

    double t0 = now_ms();
    bk_image img;
    char why[512];
    if (bk_image_read(in, max_pixels, &img, why, sizeof why)) {
        bokeh_close(p);
        return bad("%s: %s", in, why);
    }
    double decode_ms = now_ms() - t0;
    float *disparity = NULL;
    char depth_warning[512] = "";      /* said once the photo is rendered: a failure is one line */
    bokeh_depth depth = {NULL, NAN, (float)aperture};
    if (needs_depth) {
        code = read_depth(p, depth_path, max_pixels, img.width, img.height, &disparity, depth_warning,
                          sizeof depth_warning);
        if (!code && fx >= 0 && bokeh_focus_at(p, disparity, img.width, img.height, fx, fy, &depth.focus) != BOKEH_OK)
            code = bad("%s%s", bokeh_message(p), "");
        if (!code && !isnan(focus_disparity)) depth.focus = (float)focus_disparity;
        depth.disparity = disparity;
    }
    bokeh_format format = img.channels == 1 ? BOKEH_FORMAT_GRAY8 : img.channels == 3 ? BOKEH_FORMAT_RGB888
                                                                                       : BOKEH_FORMAT_RGBA8888;
    size_t stride = (size_t)img.width * img.channels;
    uint8_t *result = code ? NULL : malloc(stride * img.height);
    const uint8_t *pixels = img.pixels;        /* what libbokeh renders: 8-bit */
    uint8_t *narrow = NULL;
    uint16_t *wide = NULL;
    if (!code && img.bits == 16) pixels = narrow = to_8bit(&img);
    if (!code && (!result || !pixels)) {
        fprintf(messages, PROG ": error: out of memory\n");
        code = EXIT_INTERNAL;
    }
    double steady = 0, pre = 0, post = 0;
    for (long long r = 0; r < runs && !code; r++) {
        int use_depth = needs_depth || (is_portrait && !isnan(aperture));
        s = bokeh_render(p, pixels, img.width, img.height, stride, format, result, stride, use_depth ? &depth : NULL);
        if (s != BOKEH_OK) {
            code = s == BOKEH_ERROR_MEMORY || s == BOKEH_ERROR_RUNTIME ? EXIT_INTERNAL : EXIT_BAD_INPUT;
            fprintf(messages, PROG ": error: %s: %s\n", in, bokeh_message(p));
            break;
        }
        bokeh_get_info(p, &info);
        if (r > 0) steady += info.last_run_ms;
        pre += info.pre_ms;
        post += info.post_ms;
    }
    double encode_ms = NAN;
    if (!code) {
        bk_image res = img;        /* with the photo's colour profile and EXIF */
        res.pixels = result;
        res.bits = 8;
        t0 = now_ms();
        if (img.bits == 16 && !strcmp(bk_image_format(out), "png")) {
            res.pixels = (uint8_t *)(wide = to_16bit(result, &img));
            res.bits = 16;
        }
        if (!res.pixels) {
            fprintf(messages, PROG ": error: out of memory\n");
            code = EXIT_INTERNAL;
        } else if (bk_image_write(out, &res, why, sizeof why)) {
            code = bad("%s%s", why, "");
        }
        encode_ms = now_ms() - t0;
    }
    if (!code && depth_warning[0]) fprintf(messages, PROG ": warning: depth map %s: %s\n", depth_path, depth_warning);
    if (!code && is_portrait && !info.person_found)      /* in a batch, the line must say which photo */
        fprintf(messages, PROG ": warning: %s: no person found (%.1f%% of the photo); left unchanged\n", in,
                info.person_share * 100);
    if (!code && info.weights && !strcmp(info.weights, "untrained"))      /* docs/contract.md, F8 */
        fprintf(messages, PROG ": warning: %s: untrained weights: the model blurs the whole photo; export with "
                "--checkpoint (train-bokeh) for a learned bokeh\n", model ? model : portrait);
    if (!code && json) {
        fprintf(output, "{\n  \"model\": ");
        json_string(model ? model : portrait);
        fprintf(output, ",\n  \"track\": ");
        json_string(info.track);
        fprintf(output, ",\n  \"weights\": ");
        json_string(info.weights);
        fprintf(output, ",\n  \"input_size\": [%d, %d],\n  \"accelerator\": ", info.input_height, info.input_width);
        json_string(info.accelerator);
        fprintf(output, ",\n  \"segmenter_accelerator\": ");
        if (info.segmenter_accelerator) json_string(info.segmenter_accelerator);
        else fprintf(output, "null");
        fprintf(output, ",\n  \"fully_accelerated\": %s,\n  \"fallback\": ", info.fully_accelerated ? "true" : "false");
        json_string(info.fallback);
        fprintf(output, ",\n  \"gpu_precision\": ");
        if (info.gpu_precision) json_string(info.gpu_precision);
        else fprintf(output, "null");
        fprintf(output, ",\n  \"threads\": ");
        if (threads) fprintf(output, "%lld", threads);
        else fprintf(output, "null");
        fprintf(output, ",\n  \"input\": ");
        json_string(in);
        fprintf(output, ",\n  \"output\": ");
        json_string(out);
        fprintf(output, ",\n  \"size\": [%d, %d],\n  \"runs\": %lld,\n", img.height, img.width, runs);
        if (needs_depth) {        /* a portrait's focus stays inside its graph: there is none to report */
            fprintf(output, "  \"focus_disparity\": ");
            if (isnan(info.focus)) fprintf(output, "null");
            else fprintf(output, "%.6f", info.focus);
            fprintf(output, ",\n");
        }
        if (is_portrait) fprintf(output, "  \"person_share\": %.6f,\n", info.person_share);
        fprintf(output, "  \"ms\": {\n");
        json_ms("load", info.load_ms, 0);
        json_ms("compile", info.compile_ms, 0);
        json_ms("first_run", info.first_run_ms, 0);
        json_ms("steady_run", runs > 1 ? steady / (runs - 1) : NAN, 0);
        json_ms("host_pre", pre / runs, 0);
        json_ms("host_post", post / runs, 0);
        json_ms("decode", decode_ms, 0);
        json_ms("encode", encode_ms, 1);
        fprintf(output, "  },\n  \"peak_rss_mb\": %.1f\n}\n", peak_rss_mb());
    } else if (!code) {
        fprintf(output, "%s\n", out);
    }
    free(result);
    free(narrow);
    free(wide);
    free(disparity);
    bk_image_free(&img);
    bokeh_close(p);
    fflush(output);
    return code;
}
