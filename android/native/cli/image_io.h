/* 8-bit PNG and JPEG files in and out for bokeh-native (libpng, libjpeg-turbo). */
#ifndef BOKEH_IMAGE_IO_H
#define BOKEH_IMAGE_IO_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int width, height, channels;    /* channels: 1 grey, 3 RGB, 4 RGBA */
    int bits;                       /* 8, or 16 (depth maps only; samples in native byte order) */
    uint8_t *pixels;                /* rows packed */
} bk_image;

/* Read a PNG or JPEG (EXIF orientation applied). allow16: keep 16-bit PNG samples (depth
 * maps); else a 16-bit file is refused. 0, or -1 with a one-line reason in `why`. */
int bk_image_read(const char *path, long long max_pixels, int allow16, bk_image *img, char *why, size_t n);
/* Write atomically (a temporary file beside `path`, then rename), format by extension. */
int bk_image_write(const char *path, const bk_image *img, char *why, size_t n);
/* "png", "jpeg" or NULL, from the extension. */
const char *bk_image_format(const char *path);
void bk_image_free(bk_image *img);

#endif
