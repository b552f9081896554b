/* Why LiteRT's GPU accelerator has no Vulkan device here, as far as files can tell. On
 * desktop Linux the accelerator is WebGPU on Vulkan; when no driver is there, compiling for
 * it fails with no more than "runtime failure", while bokeh-render's litert-gpu backend says
 * that no Vulkan driver was found. This says it the same way. */
#ifndef BOKEH_VULKAN_H
#define BOKEH_VULKAN_H

#include <stddef.h>

/* After a GPU compile failed: 1 with one clause in `why` ("no Vulkan driver: ...", "no
 * Vulkan loader ...") when the ICD files VK_ICD_FILENAMES or VK_DRIVER_FILES names do not
 * exist, the loader libvulkan.so.1 cannot be loaded, or no ICD file is in the folders the
 * loader searches; else 0, which does not mean that a device works. Always 0 on Android,
 * whose GPU accelerator uses OpenCL and OpenGL. */
int bk_vulkan_missing(char *why, size_t why_size);

#endif
