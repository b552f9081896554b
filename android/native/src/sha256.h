/* SHA-256 of a file, as hex: how a sidecar fingerprints its model (bokehlite/files.py). */
#ifndef BOKEH_SHA256_H
#define BOKEH_SHA256_H

/* 0 and 64 hex digits plus NUL in hex, or -1 when the file cannot be read. */
int bk_sha256_file(const char *path, char hex[65]);

#endif
