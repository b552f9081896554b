/* PNG and JPEG for bokeh-native, decoded and encoded as runtime/photo.py does with OpenCV.
 * Both libraries report errors by longjmp; every decode runs under its own jump buffer and
 * says what failed in one line. The size is checked from the header before any pixel is
 * decoded. Whatever a decode allocates lives in the bk_image (freed on failure) or in a
 * volatile local, so nothing leaks when a library jumps out of the middle of it. */
#define _POSIX_C_SOURCE 200809L
#include "image_io.h"

#include <stdio.h>   /* before jpeglib.h, which uses FILE */

#include <errno.h>
#include <fcntl.h>
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define JPEG_QUALITY 95    /* runtime/photo.py's */
#define MIN_SIDE 2
#define EXIF_ORIENTATION 0x0112
#define JPEG_MARKER_MAX 65533   /* bytes of data one JPEG marker segment holds */
static const char EXIF_HEADER[6] = "Exif\0";    /* "Exif\0\0": the APP1 block that holds EXIF */
static const char PNG_ICC_NAME[] = "ICC Profile";   /* the profile name OpenCV writes */

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
    free(img->icc);
    free(img->exif);
    img->pixels = img->icc = img->exif = NULL;
    img->icc_size = img->exif_size = 0;
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

static uint8_t *copy_of(const void *data, size_t size) {
    uint8_t *c = malloc(size ? size : 1);
    if (c) memcpy(c, data, size);
    return c;
}

/* ---- EXIF orientation, as runtime/header.py reads and resets it ------------------------- */

/* The TIFF structure's first directory: byte order, where its entries start and how many
 * there are; 0 when it is not TIFF or cut short before the entry count. */
typedef struct {
    const uint8_t *d;
    size_t n;
    int le;
    size_t first;
    unsigned count;
} tiff_ifd;

static unsigned tiff16(const tiff_ifd *t, size_t at) {
    const uint8_t *p = t->d + at;
    return t->le ? (unsigned)p[0] | (unsigned)p[1] << 8 : (unsigned)p[0] << 8 | (unsigned)p[1];
}

static unsigned long tiff32(const tiff_ifd *t, size_t at) {
    return t->le ? tiff16(t, at) | (unsigned long)tiff16(t, at + 2) << 16
                 : (unsigned long)tiff16(t, at) << 16 | tiff16(t, at + 2);
}

static int tiff_open(const uint8_t *d, size_t n, tiff_ifd *t) {
    if (n >= 6 && !memcmp(d, EXIF_HEADER, 6)) {
        d += 6;
        n -= 6;
    }
    if (n < 8 || (memcmp(d, "II*\0", 4) && memcmp(d, "MM\0*", 4))) return 0;
    t->d = d;
    t->n = n;
    t->le = d[0] == 'I';
    unsigned long ofs = tiff32(t, 4);
    if (ofs > n || n - ofs < 2) return 0;
    t->first = ofs + 2;
    t->count = tiff16(t, ofs);
    return 1;
}

/* Entry i's offset, or 0 when its tag, type and count are cut short. */
static size_t tiff_entry(const tiff_ifd *t, unsigned i) {
    size_t at = t->first + (size_t)12 * i;
    return at <= t->n && t->n - at >= 8 ? at : 0;
}

/* EXIF orientation (1-8): the last orientation tag (SHORT or LONG, count 1) of the first
 * directory; 1 when absent, out of range, or when any entry is cut short (header.py's
 * tiff_tags gives up on the whole directory then). */
static int exif_orientation(const uint8_t *d, size_t n) {
    tiff_ifd t;
    if (!d || !tiff_open(d, n, &t)) return 1;
    unsigned long value = 1;
    for (unsigned i = 0; i < t.count; i++) {
        size_t at = tiff_entry(&t, i);
        if (!at) return 1;
        unsigned kind = tiff16(&t, at + 2);
        if (tiff16(&t, at) != EXIF_ORIENTATION || tiff32(&t, at + 4) != 1 || (kind != 3 && kind != 4)) continue;
        if (t.n - at < 8 + (kind == 3 ? 2u : 4u)) return 1;
        value = kind == 3 ? tiff16(&t, at + 8) : tiff32(&t, at + 8);
    }
    return value >= 1 && value <= 8 ? (int)value : 1;
}

/* Set the orientation to 1 (upright) in place: the pixels have been turned already, and no
 * viewer must turn them again. A directory cut short is left as it is. */
static void exif_upright(uint8_t *d, size_t n) {
    tiff_ifd t;
    if (!d || !tiff_open(d, n, &t)) return;
    for (unsigned i = 0; i < t.count; i++)
        if (!tiff_entry(&t, i)) return;
    uint8_t *base = (uint8_t *)t.d;
    for (unsigned i = 0; i < t.count; i++) {
        size_t at = tiff_entry(&t, i);
        unsigned kind = tiff16(&t, at + 2);
        if (tiff16(&t, at) != EXIF_ORIENTATION || tiff32(&t, at + 4) != 1 || (kind != 3 && kind != 4)) continue;
        size_t size = kind == 3 ? 2 : 4;
        if (t.n - at < 8 + size) continue;
        memset(base + at + 8, 0, size);
        base[at + 8 + (t.le ? 0 : size - 1)] = 1;
    }
}

/* Turn stored pixels upright, as runtime/photo.py's apply_orientation does. */
static int orient(bk_image *img, int o) {
    if (o == 1) return 0;
    int w = img->width, h = img->height, swap = o >= 5;
    size_t px = (size_t)img->channels * (img->bits / 8);
    int ow = swap ? h : w, oh = swap ? w : h;
    uint8_t *out = malloc((size_t)w * h * px);
    if (!out) return -1;
    int fx = o == 2 || o == 3 || o == 6 || o == 7, fy = o == 3 || o == 4 || o == 7 || o == 8;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            /* out[y][x] = T[y'][x'] with the flips, T = S or its transpose */
            int ty = fy ? oh - 1 - y : y, tx = fx ? ow - 1 - x : x;
            int sy = swap ? tx : ty, sx = swap ? ty : tx;
            memcpy(out + ((size_t)y * ow + x) * px, img->pixels + ((size_t)sy * w + sx) * px, px);
        }
    free(img->pixels);
    img->pixels = out;
    img->width = ow;
    img->height = oh;
    return 0;
}

/* Pixels upright, and the EXIF block saying so. */
static int upright(bk_image *img, char *why, size_t n) {
    if (orient(img, exif_orientation(img->exif, img->exif_size))) return fail(why, n, "out of memory");
    exif_upright(img->exif, img->exif_size);
    return 0;
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

static void png_no_memory(png_structp png, char *why, size_t n) {
    snprintf(why, n, "out of memory");
    png_longjmp(png, 1);
}

static int read_png(const uint8_t *data, size_t size, long long max_pixels, bk_image *img, char *why, size_t n) {
    png_source src = {data, size, 0, why, n};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_fail, png_quiet);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *volatile rows = NULL;     /* set after setjmp: volatile, or the jump back loses it */
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
    /* The channels OpenCV's IMREAD_UNCHANGED gives: grey with alpha comes out RGBA, colour
     * and palette images with a tRNS chunk RGBA, and grey with a tRNS chunk stays grey. */
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS) && (type & PNG_COLOR_MASK_COLOR)) png_set_tRNS_to_alpha(png);
    if (type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    if (depth == 16) png_set_swap(png);      /* samples in little-endian = native on our targets */
    png_set_interlace_handling(png);
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
    /* To IEND, as OpenCV reads it (a file cut after its pixels is refused there too); the
     * chunks after the pixels, an eXIf among them, come into `info`. */
    png_read_end(png, info);
    free(rows);
    rows = NULL;
    png_charp name;
    int compression;
    png_bytep profile, exif;
    png_uint_32 profile_size, exif_size;
    if (png_get_iCCP(png, info, &name, &compression, &profile, &profile_size) && profile_size) {
        if (!(img->icc = copy_of(profile, profile_size))) png_no_memory(png, why, n);
        img->icc_size = profile_size;
    }
    if (png_get_eXIf_1(png, info, &exif_size, &exif) && exif_size) {
        if (!(img->exif = copy_of(exif, exif_size))) png_no_memory(png, why, n);
        img->exif_size = exif_size;
    }
    png_destroy_read_struct(&png, &info, NULL);
    return upright(img, why, n) ? (bk_image_free(img), -1) : 0;
}

/* ---- JPEG ----------------------------------------------------------------------------- */

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char *why;
    size_t n;
    volatile int finishing;     /* every scanline read: what goes wrong now is no failure */
} jpeg_failure;

static void jpeg_fail(j_common_ptr cinfo) {
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    f->mgr.format_message(cinfo, text);
    snprintf(f->why, f->n, "truncated or corrupt JPEG file (%s)", text);
    longjmp(f->jump, 1);
}

/* libjpeg's warnings. Data that ends before the last scanline is read (a file cut short, or
 * only its EOI marker missing: libjpeg would fill the rest with grey) is a failure: OpenCV's
 * decoder suspends where the data ends and refuses it, so bokeh-render does. Damaged data that
 * libjpeg resyncs past (its other warnings) is decoded, as OpenCV decodes it; so is a file
 * that goes wrong only after its last scanline (OpenCV ignores jpeg_finish_decompress). */
static void jpeg_warning(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF && !((jpeg_failure *)cinfo->err)->finishing)
        jpeg_fail(cinfo);
}

/* libjpeg's error manager that fails into `why` (and the caller's setjmp), silently. */
static struct jpeg_error_mgr *jpeg_failure_init(jpeg_failure *err, char *why, size_t n) {
    struct jpeg_error_mgr *mgr = jpeg_std_error(&err->mgr);
    err->mgr.error_exit = jpeg_fail;
    err->mgr.emit_message = jpeg_warning;
    err->why = why;
    err->n = n;
    err->finishing = 0;
    return mgr;
}

/* CMYK as libjpeg gives it (Adobe's inverted convention, YCCK already turned CMYK) to RGB,
 * with OpenCV's arithmetic (icvCvt_CMYK2BGR_8u_C4C3R), in place: 4 bytes a pixel become 3. */
static void cmyk_to_rgb(uint8_t *p, size_t pixels) {
    for (size_t i = 0; i < pixels; i++) {
        int c = p[4 * i], m = p[4 * i + 1], y = p[4 * i + 2], k = p[4 * i + 3];
        p[3 * i] = (uint8_t)(k - ((255 - c) * k >> 8));
        p[3 * i + 1] = (uint8_t)(k - ((255 - m) * k >> 8));
        p[3 * i + 2] = (uint8_t)(k - ((255 - y) * k >> 8));
    }
}

/* The decoded JPEG as the caller gets it: RGB from CMYK, upright. */
static int jpeg_done(bk_image *img, int cmyk, char *why, size_t n) {
    if (cmyk) {
        size_t pixels = (size_t)img->width * img->height;
        cmyk_to_rgb(img->pixels, pixels);
        uint8_t *smaller = realloc(img->pixels, pixels * 3);
        if (smaller) img->pixels = smaller;
    }
    return upright(img, why, n) ? (bk_image_free(img), -1) : 0;
}

static int read_jpeg(const uint8_t *data, size_t size, long long max_pixels, bk_image *img, char *why, size_t n) {
    struct jpeg_decompress_struct cinfo;
    jpeg_failure err;
    volatile int cmyk = 0;
    cinfo.err = jpeg_failure_init(&err, why, n);
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        /* After the last scanline (the EOI marker missing, junk after the scan): the image is
         * whole, and OpenCV, which ignores jpeg_finish_decompress's outcome, keeps it. */
        if (err.finishing) return jpeg_done(img, cmyk, why, n);
        bk_image_free(img);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);     /* EXIF (and XMP, which is not kept) */
    jpeg_save_markers(&cinfo, JPEG_APP0 + 2, 0xFFFF);     /* the ICC profile, maybe in several */
    jpeg_read_header(&cinfo, TRUE);
    if (check_size(cinfo.image_height, cinfo.image_width, max_pixels, why, n)) longjmp(err.jump, 1);
    /* EXIF is the APP1 block that starts "Exif\0\0" (an XMP block is APP1 too, often after
     * it); with several, the last, as OpenCV reads them. */
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length > 6 && !memcmp(m->data, EXIF_HEADER, 6)) {
            free(img->exif);
            if (!(img->exif = copy_of(m->data + 6, m->data_length - 6))) {
                snprintf(why, n, "out of memory");
                longjmp(err.jump, 1);
            }
            img->exif_size = m->data_length - 6;
        }
    JOCTET *icc = NULL;
    unsigned icc_size = 0;
    if (jpeg_read_icc_profile(&cinfo, &icc, &icc_size) && icc) {
        img->icc = icc;
        img->icc_size = icc_size;
    }
    cmyk = cinfo.num_components == 4;
    cinfo.out_color_space = cmyk ? JCS_CMYK : cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    img->width = (int)cinfo.output_width;
    img->height = (int)cinfo.output_height;
    img->channels = cmyk ? 3 : cinfo.output_components;
    img->bits = 8;
    size_t row = (size_t)img->width * cinfo.output_components;
    img->pixels = malloc(row * img->height);
    if (!img->pixels) {
        snprintf(why, n, "out of memory");
        longjmp(err.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW r = img->pixels + row * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &r, 1);
    }
    err.finishing = 1;
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return jpeg_done(img, cmyk, why, n);
}

int bk_image_read(const char *path, long long max_pixels, bk_image *img, char *why, size_t n) {
    memset(img, 0, sizeof *img);
    size_t size = 0;
    uint8_t *data = read_file(path, &size, why, n);
    if (!data) return -1;
    int r;
    if (size == 0) r = fail(why, n, "file is empty");
    else if (size >= 8 && !memcmp(data, "\x89PNG\r\n\x1a\n", 8)) r = read_png(data, size, max_pixels, img, why, n);
    else if (size >= 3 && !memcmp(data, "\xff\xd8\xff", 3)) r = read_jpeg(data, size, max_pixels, img, why, n);
    else r = fail(why, n, "not an image (expected JPEG or PNG)");
    free(data);
    return r;
}

/* ---- writing ----------------------------------------------------------------------------- */

static void png_write_fail(png_structp png, png_const_charp message) {
    (void)message;
    png_longjmp(png, 1);
}

static int write_png(FILE *f, const bk_image *img, char *why, size_t n) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_write_fail, png_quiet);
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
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, img->bits, types[img->channels],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (img->icc && (uint64_t)img->icc_size <= 0x7fffffffu) {
        /* libpng checks the profile against the colour type (an RGB profile on a grey image):
         * one it refuses is left out, with a quiet warning, and the image written without it,
         * as runtime/photo.py drops a profile the encoder refuses rather than the photo. */
        png_set_benign_errors(png, 1);
        png_set_iCCP(png, info, PNG_ICC_NAME, PNG_COMPRESSION_TYPE_BASE, img->icc, (png_uint_32)img->icc_size);
    }
    if (img->exif && (uint64_t)img->exif_size <= 0x7fffffffu) png_set_eXIf_1(png, info, (png_uint_32)img->exif_size, img->exif);
    png_write_info(png, info);
    if (img->bits == 16) png_set_swap(png);
    size_t row = (size_t)img->width * img->channels * (img->bits / 8);
    for (int y = 0; y < img->height; y++) png_write_row(png, img->pixels + (size_t)y * row);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

static int write_jpeg(FILE *f, const bk_image *img, char *why, size_t n) {
    if (img->bits != 8) return fail(why, n, "JPEG cannot hold 16-bit samples");
    struct jpeg_compress_struct cinfo;
    jpeg_failure err;
    cinfo.err = jpeg_failure_init(&err, why, n);
    uint8_t *volatile rgb = NULL;        /* set after setjmp: volatile, or the jump back loses it */
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
    /* After JFIF's APP0, as OpenCV writes them: EXIF in one APP1 (a block too big for one
     * marker cannot be written), then the profile in as many APP2 markers as it takes. */
    if (img->exif && img->exif_size <= JPEG_MARKER_MAX - 6) {
        jpeg_write_m_header(&cinfo, JPEG_APP0 + 1, (unsigned)(img->exif_size + 6));
        for (int i = 0; i < 6; i++) jpeg_write_m_byte(&cinfo, EXIF_HEADER[i]);
        for (size_t i = 0; i < img->exif_size; i++) jpeg_write_m_byte(&cinfo, img->exif[i]);
    }
    if (img->icc && (uint64_t)img->icc_size <= 0xffffffffu) jpeg_write_icc_profile(&cinfo, img->icc, (unsigned)img->icc_size);
    if (img->channels == 4 || img->channels == 2) {       /* JPEG has no alpha */
        rgb = malloc((size_t)img->width * 3);
        if (!rgb) {
            snprintf(why, n, "out of memory");
            longjmp(err.jump, 1);
        }
    }
    while (cinfo.next_scanline < cinfo.image_height) {
        const uint8_t *src = img->pixels + (size_t)cinfo.next_scanline * img->width * img->channels;
        JSAMPROW r = (JSAMPROW)src;
        if (rgb) {
            for (int x = 0; x < img->width; x++) memcpy(rgb + 3 * x, src + (size_t)img->channels * x, 3);
            r = rgb;
        }
        jpeg_write_scanlines(&cinfo, &r, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    free(rgb);
    return 0;
}

/* The mode open(path, O_CREAT, 0666) would give: 0666 less the umask, read from /proc where
 * Linux has it (as bokehlite.files.current_umask does), else set and restored. */
static mode_t new_file_mode(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned mask = 0;
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f)) found = sscanf(line, "Umask: %o", &mask) == 1;
    if (f) fclose(f);
    if (!found) {
        mode_t old = umask(022);
        umask(old);
        mask = old;
    }
    return (mode_t)(0666 & ~mask);
}

/* Make the rename durable: fsync the folder that holds `path` (best effort). */
static void sync_folder(const char *path) {
    char folder[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(folder, sizeof folder, ".");
    else snprintf(folder, sizeof folder, "%.*s", (int)(slash == path ? 1 : slash - path), path);
    int fd = open(folder, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;
    fsync(fd);
    close(fd);
}

int bk_image_write(const char *path, const bk_image *img, char *why, size_t n) {
    const char *format = bk_image_format(path);
    if (!format) return fail(why, n, "%s: unknown output format (expected .png, .jpg or .jpeg)", path);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path) >= (int)sizeof tmp)
        return fail(why, n, "cannot write %s (the name is too long)", path);
    int fd = mkstemp(tmp);
    if (fd < 0) return fail(why, n, "cannot write %s (cannot create a file in its folder: %s)", path, strerror(errno));
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        return fail(why, n, "cannot write %s", path);
    }
    int r = !strcmp(format, "png") ? write_png(f, img, why, n) : write_jpeg(f, img, why, n);
    if (fflush(f) || ferror(f) || fsync(fd)) r = r ? r : fail(why, n, "cannot write %s (%s)", path, strerror(errno));
    /* mkstemp makes the file 0600; the output gets what a plain open() would give it */
    if (!r && fchmod(fd, new_file_mode())) r = fail(why, n, "cannot write %s (%s)", path, strerror(errno));
    if (fclose(f)) r = r ? r : fail(why, n, "cannot write %s", path);
    if (!r && rename(tmp, path)) r = fail(why, n, "cannot write %s (%s)", path, strerror(errno));
    if (r) unlink(tmp);
    else sync_folder(path);
    return r;
}
