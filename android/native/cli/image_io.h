/* PNG and JPEG files in and out for bokeh-native (libpng, libjpeg-turbo), decoded and encoded
 * as bokeh-render's runtime/photo.py does it with OpenCV: pixels upright (EXIF orientation
 * applied), RGB(A) or grey, 8- or 16-bit; the colour profile and the EXIF block carried
 * into the file written from them. */
#ifndef BOKEH_IMAGE_IO_H
#define BOKEH_IMAGE_IO_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int width, height, channels;    /* channels: 1 grey, 3 RGB, 4 RGBA */
    int bits;                       /* 8, or 16 (PNG only; samples in native byte order) */
    uint8_t *pixels;                /* rows packed */
    uint8_t *icc;                   /* the colour profile (ICC), or NULL */
    size_t icc_size;
    uint8_t *exif;                  /* the EXIF block, TIFF structure without "Exif\0\0", or NULL; */
    size_t exif_size;               /* read: its orientation reset to 1, the pixels being upright */
} bk_image;

/* Read a PNG or JPEG (sniffed from its first bytes), upright (EXIF orientation applied). CMYK
 * JPEGs come out RGB, as OpenCV converts them; 16-bit PNGs keep their 16-bit samples. A
 * truncated file is a failure, never a half-grey picture. 0, or -1 with a one-line reason in
 * `why`. */
int bk_image_read(const char *path, long long max_pixels, bk_image *img, char *why, size_t n);
/* Write atomically (a temporary file beside `path`, then rename), format by extension, with
 * the mode a plain open() gets under the umask. The profile and EXIF go in where the format
 * holds them; a profile PNG refuses for the image's colour type (RGB on grey) is left out. */
int bk_image_write(const char *path, const bk_image *img, char *why, size_t n);
/* "png", "jpeg" or NULL, from the extension. */
const char *bk_image_format(const char *path);
void bk_image_free(bk_image *img);

#endif
