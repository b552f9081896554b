/* The Vulkan checks behind bk_vulkan_missing (vulkan.h), in the order bokeh-render's
 * litert-gpu backend makes them (its adapter search, _missing_driver): a driver variable
 * that names files that are not there is the user's setting, and said first; then the
 * loader; then the ICD folders the loader searches (the Vulkan loader's "Driver Discovery
 * on Linux"). Only files are looked at: no Vulkan instance is created, so no driver is
 * loaded into the app and the loader prints nothing on its stderr. */
#define _POSIX_C_SOURCE 200809L
#include "vulkan.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SWIFTSHADER_ICD "/usr/lib/chromium/vk_swiftshader_icd.json"
#define HOW_TO_GET_ONE                                                                                  \
    "install your GPU's Vulkan driver, or SwiftShader, a software Vulkan device (Debian/Ubuntu: apt-get " \
    "install chromium-common libvulkan1, then VK_ICD_FILENAMES=" SWIFTSHADER_ICD ")"

#ifdef __ANDROID__

int bk_vulkan_missing(char *why, size_t n) {
    (void)why;
    (void)n;
    return 0;
}

#else

/* The loader's driver variables, in bokeh-render's order (ICD_VARIABLES). */
static const char *const DRIVER_VARIABLES[] = {"VK_ICD_FILENAMES", "VK_DRIVER_FILES"};

static int exists(const char *path) {
    struct stat st;
    return !stat(path, &st);     /* a file or, as the loader also takes, a folder of them */
}

/* The entries of `name`'s ':'-separated list that do not exist, into why; 1 when any. */
static int missing_driver(const char *name, char *why, size_t n) {
    const char *value = getenv(name);
    if (!value || !*value) return 0;
    char missing[512] = "";
    size_t k = 0;
    for (const char *s = value; *s;) {
        const char *e = strchr(s, ':');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        char path[4096];
        if (len && len < sizeof path) {
            memcpy(path, s, len);
            path[len] = 0;
            if (!exists(path) && k < sizeof missing)
                k += (size_t)snprintf(missing + k, sizeof missing - k, "%s%s", k ? ", " : "", path);
        }
        s += len + (e != NULL);
    }
    if (!missing[0]) return 0;
    snprintf(why, n, "no Vulkan driver: %s names %s, which does not exist (point it at an installed Vulkan "
             "driver's ICD file, or unset it to use the system's drivers)", name, missing);
    return 1;
}

/* Whether folder `dir`/vulkan/icd.d holds an ICD file (*.json). */
static int has_icd(const char *dir) {
    char path[4096];
    if (!dir || !*dir || snprintf(path, sizeof path, "%s/vulkan/icd.d", dir) >= (int)sizeof path) return 0;
    DIR *d = opendir(path);
    if (!d) return 0;
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        found = len > 5 && !strcmp(e->d_name + len - 5, ".json");
    }
    closedir(d);
    return found;
}

/* has_icd for each folder of a ':'-separated list (`fallback` when the variable is unset). */
static int has_icd_in(const char *variable, const char *fallback) {
    const char *value = getenv(variable);
    if (!value || !*value) value = fallback;
    for (const char *s = value; s && *s;) {
        const char *e = strchr(s, ':');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        char dir[4096];
        if (len && len < sizeof dir) {
            memcpy(dir, s, len);
            dir[len] = 0;
            if (has_icd(dir)) return 1;
        }
        s += len + (e != NULL);
    }
    return 0;
}

/* $HOME/suffix, for the XDG defaults. */
static int has_icd_at_home(const char *variable, const char *suffix) {
    if (getenv(variable) && *getenv(variable)) return has_icd_in(variable, NULL);
    const char *home = getenv("HOME");
    char dir[4096];
    return home && *home && snprintf(dir, sizeof dir, "%s/%s", home, suffix) < (int)sizeof dir && has_icd(dir);
}

/* The folders the loader searches when no driver variable is set. */
static int any_icd(void) {
    const char *add = getenv("VK_ADD_DRIVER_FILES");
    if (add && *add) return 1;                  /* checked as a driver variable is, by the caller */
    return has_icd_at_home("XDG_CONFIG_HOME", ".config") || has_icd_in("XDG_CONFIG_DIRS", "/etc/xdg") ||
           has_icd("/etc") || has_icd("/usr/local/etc") || has_icd_at_home("XDG_DATA_HOME", ".local/share") ||
           has_icd_in("XDG_DATA_DIRS", "/usr/local/share:/usr/share");
}

int bk_vulkan_missing(char *why, size_t n) {
    int named = 0;
    for (size_t i = 0; i < sizeof DRIVER_VARIABLES / sizeof *DRIVER_VARIABLES; i++) {
        if (missing_driver(DRIVER_VARIABLES[i], why, n)) return 1;
        named |= getenv(DRIVER_VARIABLES[i]) && *getenv(DRIVER_VARIABLES[i]);
    }
    if (missing_driver("VK_ADD_DRIVER_FILES", why, n)) return 1;
    void *loader = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!loader) {
        const char *error = dlerror();
        snprintf(why, n, "no Vulkan loader (%s); %s", error ? error : "libvulkan.so.1 not found", HOW_TO_GET_ONE);
        return 1;
    }
    dlclose(loader);
    if (!named && !any_icd()) {
        snprintf(why, n, "no Vulkan driver (no ICD file in the Vulkan loader's folders: /etc/vulkan/icd.d, "
                 "/usr/share/vulkan/icd.d and their XDG counterparts); %s", HOW_TO_GET_ONE);
        return 1;
    }
    return 0;
}

#endif
