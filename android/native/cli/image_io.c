/* PNG and JPEG for bokeh-native. Both libraries report errors by longjmp; every decode
 * runs under its own jump buffer and says what failed in one line. The size is checked
 * from the header before any pixel is decoded, as runtime/photo.py does. */
#define _POSIX_C_SOURCE 200809L
#include "image_io.h"

#include <stdio.h>   /* before jpeglib.h, which uses FILE */

#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define JPEG_QUALITY 95    /* runtime/photo.py's */
#define MIN_SIDE 2

static int fail(char *why, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return -1;
}

const char *bk_image_format(const char *path) {
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) return NULL;
    if (!strcasecmp(dot, ".png")) return "png";
    if (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".jpe")) return "jpeg";
    return NULL;
}

void bk_image_free(bk_image *img) {
    free(img->pixels);
    img->pixels = NULL;
}

static int check_size(long long h, long long w, long long max_pixels, char *why, size_t n) {
    if (h < MIN_SIDE || w < MIN_SIDE)
        return fail(why, n, "image is %lldx%lld; both sides must be at least %d pixels", w, h, MIN_SIDE);
    if (h * w > max_pixels)
        return fail(why, n, "image is %lldx%lld (%.1f MP), over the %g MP limit (raise it with --max-pixels)", w, h,
                    h * w / 1e6, max_pixels / 1e6);
    return 0;
}

static uint8_t *read_file(const char *path, size_t *size, char *why, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail(why, n, "no such file or not readable");
        return NULL;
    }
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len < cap) break;
        uint8_t *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        fail(why, n, bad ? "cannot read it (is it a directory?)" : "out of memory");
        return NULL;
    }
    *size = len;
    return buf;
}

/* ---- PNG ---------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    char *why;
    size_t n;
} png_source;

static void png_read_mem(png_structp png, png_bytep out, png_size_t len) {
    png_source *s = png_get_io_ptr(png);
    if (s->size - s->pos < len) png_error(png, "truncated");
    memcpy(out, s->data + s->pos, len);
    s->pos += len;
}

static void png_fail(png_structp png, png_const_charp message) {
    png_source *s = png_get_error_ptr(png);
    if (s) snprintf(s->why, s->n, "truncated or corrupt PNG file (%s)", message);
    png_longjmp(png, 1);
}

static void png_quiet(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

static int read_png(const uint8_t *data, size_t size, long long max_pixels, int allow16, bk_image *img, char *why,
                    size_t n) {
    png_source src = {data, size, 0, why, n};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_fail, png_quiet);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *rows = NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return fail(why, n, "out of memory");
    }
    snprintf(why, n, "truncated or corrupt PNG file");
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        bk_image_free(img);
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    png_set_read_fn(png, &src, png_read_mem);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
    if (check_size(h, w, max_pixels, why, n)) png_longjmp(png, 1);
    if (depth == 16 && !allow16) {
        snprintf(why, n, "16-bit PNG is not supported by bokeh-native (8-bit PNG and JPEG only)");
        png_longjmp(png, 1);
    }
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    int trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    if (trns) png_set_tRNS_to_alpha(png);
    /* Grey with alpha comes out RGBA, as OpenCV's IMREAD_UNCHANGED gives it. */
    if (type == PNG_COLOR_TYPE_GRAY_ALPHA || (type == PNG_COLOR_TYPE_GRAY && trns)) png_set_gray_to_rgb(png);
    if (depth == 16) png_set_swap(png);      /* samples in little-endian = native on our targets */
    png_read_update_info(png, info);
    img->width = (int)w;
    img->height = (int)h;
    img->channels = png_get_channels(png, info);
    img->bits = depth == 16 ? 16 : 8;
    size_t row = png_get_rowbytes(png, info);
    img->pixels = malloc(row * h);
    rows = malloc(sizeof(png_bytep) * h);
    if (!img->pixels || !rows) {
        snprintf(why, n, "out of memory for a %ux%u image", w, h);
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = img->pixels + y * row;
    png_read_image(png, rows);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

/* ---- JPEG ----------------------------------------------------------------------------- */

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char *why;
    size_t n;
} jpeg_failure;

static void jpeg_fail(j_common_ptr cinfo) {
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    f->mgr.format_message(cinfo, text);
    snprintf(f->why, f->n, "truncated or corrupt JPEG file (%s)", text);
    longjmp(f->jump, 1);
}

static void jpeg_quiet(j_common_ptr cinfo) { (void)cinfo; }

/* libjpeg's error manager that fails into `why` (and the caller's setjmp), silently. */
static struct jpeg_error_mgr *jpeg_failure_init(jpeg_failure *err, char *why, size_t n) {
    struct jpeg_error_mgr *mgr = jpeg_std_error(&err->mgr);
    err->mgr.error_exit = jpeg_fail;
    err->mgr.output_message = jpeg_quiet;
    err->why = why;
    err->n = n;
    return mgr;
}

/* EXIF orientation (1-8) from an APP1 block; 1 when absent or unreadable. */
static int exif_orientation(const uint8_t *d, size_t n) {
    if (n < 14 || memcmp(d, "Exif\0\0", 6)) return 1;
    d += 6;
    n -= 6;
    int le = d[0] == 'I';
    if (!(le ? !memcmp(d, "II*\0", 4) : !memcmp(d, "MM\0*", 4))) return 1;
#define U16(p) (le ? (unsigned)(p)[0] | (unsigned)(p)[1] << 8 : (unsigned)(p)[0] << 8 | (unsigned)(p)[1])
#define U32(p) (le ? U16(p) | (unsigned long)U16((p) + 2) << 16 : (unsigned long)U16(p) << 16 | U16((p) + 2))
    unsigned long ofs = U32(d + 4);
    if (ofs + 2 > n) return 1;
    unsigned count = U16(d + ofs);
    for (unsigned i = 0; i < count && ofs + 2 + 12 * (i + 1) <= n; i++) {
        const uint8_t *e = d + ofs + 2 + 12 * i;
        if (U16(e) == 0x0112 && U16(e + 2) == 3 && U32(e + 4) == 1) {
            unsigned v = U16(e + 8);
            return v >= 1 && v <= 8 ? (int)v : 1;
        }
    }
    return 1;
#undef U16
#undef U32
}

/* Turn stored pixels upright, as runtime/photo.py's apply_orientation does. */
static int orient(bk_image *img, int o) {
    if (o == 1) return 0;
    int w = img->width, h = img->height, c = img->channels, swap = o >= 5;
    int ow = swap ? h : w, oh = swap ? w : h;
    uint8_t *out = malloc((size_t)w * h * c);
    if (!out) return -1;
    int fx = o == 2 || o == 3 || o == 6 || o == 7, fy = o == 3 || o == 4 || o == 7 || o == 8;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            /* out[y][x] = T[y'][x'] with the flips, T = S or its transpose */
            int ty = fy ? oh - 1 - y : y, tx = fx ? ow - 1 - x : x;
            int sy = swap ? tx : ty, sx = swap ? ty : tx;
            memcpy(out + ((size_t)y * ow + x) * c, img->pixels + ((size_t)sy * w + sx) * c, (size_t)c);
        }
    free(img->pixels);
    img->pixels = out;
    img->width = ow;
    img->height = oh;
    return 0;
}

static int read_jpeg(const uint8_t *data, size_t size, long long max_pixels, bk_image *img, char *why, size_t n) {
    struct jpeg_decompress_struct cinfo;
    jpeg_failure err;
    cinfo.err = jpeg_failure_init(&err, why, n);
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        bk_image_free(img);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);
    if (check_size(cinfo.image_height, cinfo.image_width, max_pixels, why, n)) longjmp(err.jump, 1);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        snprintf(why, n, "CMYK JPEG is not supported (expected grey or colour)");
        longjmp(err.jump, 1);
    }
    cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    int orientation = 1;
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1) orientation = exif_orientation(m->data, m->data_length);
    jpeg_start_decompress(&cinfo);
    img->width = (int)cinfo.output_width;
    img->height = (int)cinfo.output_height;
    img->channels = cinfo.output_components;
    img->bits = 8;
    size_t row = (size_t)img->width * img->channels;
    img->pixels = malloc(row * img->height);
    if (!img->pixels) {
        snprintf(why, n, "out of memory");
        longjmp(err.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW r = img->pixels + row * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &r, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    if (orient(img, orientation)) {
        bk_image_free(img);
        return fail(why, n, "out of memory");
    }
    return 0;
}

int bk_image_read(const char *path, long long max_pixels, int allow16, bk_image *img, char *why, size_t n) {
    memset(img, 0, sizeof *img);
    size_t size = 0;
    uint8_t *data = read_file(path, &size, why, n);
    if (!data) return -1;
    int r;
    if (size == 0) r = fail(why, n, "file is empty");
    else if (size >= 8 && !memcmp(data, "\x89PNG\r\n\x1a\n", 8)) r = read_png(data, size, max_pixels, allow16, img, why, n);
    else if (size >= 3 && !memcmp(data, "\xff\xd8\xff", 3)) r = read_jpeg(data, size, max_pixels, img, why, n);
    else r = fail(why, n, "not an image (expected JPEG or PNG)");
    free(data);
    return r;
}

/* ---- writing ----------------------------------------------------------------------------- */

static int write_png(FILE *f, const bk_image *img, char *why, size_t n) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, png_quiet);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return fail(why, n, "out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return fail(why, n, "cannot encode the PNG");
    }
    static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                 PNG_COLOR_TYPE_RGB_ALPHA};
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8, types[img->channels],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < img->height; y++) png_write_row(png, img->pixels + (size_t)y * img->width * img->channels);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

static int write_jpeg(FILE *f, const bk_image *img, char *why, size_t n) {
    struct jpeg_compress_struct cinfo;
    jpeg_failure err;
    cinfo.err = jpeg_failure_init(&err, why, n);
    uint8_t *rgb = NULL;
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(rgb);
        return -1;
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    int grey = img->channels == 1;
    cinfo.image_width = (JDIMENSION)img->width;
    cinfo.image_height = (JDIMENSION)img->height;
    cinfo.input_components = grey ? 1 : 3;
    cinfo.in_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, JPEG_QUALITY, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    if (img->channels == 4 || img->channels == 2) rgb = malloc((size_t)img->width * 3);   /* JPEG has no alpha */
    while (cinfo.next_scanline < cinfo.image_height) {
        const uint8_t *src = img->pixels + (size_t)cinfo.next_scanline * img->width * img->channels;
        JSAMPROW r = (JSAMPROW)src;
        if (rgb) {
            for (int x = 0; x < img->width; x++) memcpy(rgb + 3 * x, src + 4 * x, 3);
            r = rgb;
        }
        jpeg_write_scanlines(&cinfo, &r, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    free(rgb);
    return 0;
}

int bk_image_write(const char *path, const bk_image *img, char *why, size_t n) {
    const char *format = bk_image_format(path);
    if (!format) return fail(why, n, "%s: unknown output format (expected .png, .jpg or .jpeg)", path);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) return fail(why, n, "cannot write %s (cannot create a file in its folder)", path);
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        return fail(why, n, "cannot write %s", path);
    }
    int r = !strcmp(format, "png") ? write_png(f, img, why, n) : write_jpeg(f, img, why, n);
    if (fflush(f) || ferror(f)) r = r ? r : fail(why, n, "cannot write %s (disk full?)", path);
    if (fclose(f)) r = r ? r : fail(why, n, "cannot write %s", path);
    if (!r && rename(tmp, path)) r = fail(why, n, "cannot write %s (rename failed)", path);
    if (r) unlink(tmp);
    return r;
}
