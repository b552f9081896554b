/* JNI bridge for ai.bokehlite.BokehPipeline: argument passing only, all logic is libbokeh's.
 * A native failure becomes a BokehException carrying bokeh_message. Values go through as
 * they are (an infinite aperture too): libbokeh checks them and says what is wrong.
 * BokehPipeline calls these under its monitor, one at a time per handle, and never with a
 * handle it has closed: so a close never frees a pipeline that a render is using. */
#include <jni.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "bokeh.h"

#define EXCEPTION "ai/bokehlite/BokehException"

static void throw_message(JNIEnv *env, const char *message) {
    jclass cls = (*env)->FindClass(env, EXCEPTION);
    if (cls) (*env)->ThrowNew(env, cls, message);
}

static bokeh_pipeline *handle(jlong h) { return (bokeh_pipeline *)(intptr_t)h; }

JNIEXPORT jlong JNICALL Java_ai_bokehlite_BokehPipeline_nativeOpen(JNIEnv *env, jclass cls, jstring path,
                                                                  jint accelerator, jboolean fp16, jint threads) {
    (void)cls;
    const char *p = path ? (*env)->GetStringUTFChars(env, path, NULL) : NULL;
    if (!p) {
        if (!(*env)->ExceptionCheck(env)) throw_message(env, "no model path given");
        return 0;
    }
    bokeh_options opt;
    bokeh_options_init(&opt);
    opt.accelerator = accelerator;
    opt.gpu_precision = fp16 ? BOKEH_GPU_FP16 : BOKEH_GPU_FP32;
    opt.threads = threads;
    bokeh_pipeline *pipeline = NULL;
    bokeh_status s = bokeh_open(p, &opt, &pipeline);
    (*env)->ReleaseStringUTFChars(env, path, p);
    if (s != BOKEH_OK) {
        throw_message(env, bokeh_message(pipeline));
        bokeh_close(pipeline);
        return 0;
    }
    return (jlong)(intptr_t)pipeline;
}

JNIEXPORT void JNICALL Java_ai_bokehlite_BokehPipeline_nativeClose(JNIEnv *env, jclass cls, jlong h) {
    (void)env;
    (void)cls;
    bokeh_close(handle(h));
}

JNIEXPORT void JNICALL Java_ai_bokehlite_BokehPipeline_nativeRender(JNIEnv *env, jclass cls, jlong h, jintArray in,
                                                                   jint width, jint height, jintArray out,
                                                                   jfloatArray disparity, jfloat focus,
                                                                   jfloat aperture, jboolean with_depth) {
    (void)cls;
    jint *src = (*env)->GetIntArrayElements(env, in, NULL);
    jint *dst = src ? (*env)->GetIntArrayElements(env, out, NULL) : NULL;
    jfloat *d = dst && disparity ? (*env)->GetFloatArrayElements(env, disparity, NULL) : NULL;
    if (!src || !dst || (disparity && !d)) {
        if (dst) (*env)->ReleaseIntArrayElements(env, out, dst, JNI_ABORT);
        if (src) (*env)->ReleaseIntArrayElements(env, in, src, JNI_ABORT);
        if (!(*env)->ExceptionCheck(env)) throw_message(env, "out of memory");
        return;
    }
    bokeh_depth depth = {d, focus, aperture};
    bokeh_status s = bokeh_render(handle(h), src, width, height, (size_t)width, BOKEH_FORMAT_ARGB_INT, dst,
                                  (size_t)width, with_depth ? &depth : NULL);
    if (d) (*env)->ReleaseFloatArrayElements(env, disparity, d, JNI_ABORT);
    (*env)->ReleaseIntArrayElements(env, out, dst, s == BOKEH_OK ? 0 : JNI_ABORT);
    (*env)->ReleaseIntArrayElements(env, in, src, JNI_ABORT);
    if (s != BOKEH_OK) throw_message(env, bokeh_message(handle(h)));
}

JNIEXPORT jstring JNICALL Java_ai_bokehlite_BokehPipeline_nativeAccelerator(JNIEnv *env, jclass cls, jlong h) {
    (void)cls;
    bokeh_info info;
    if (bokeh_get_info(handle(h), &info) != BOKEH_OK) return NULL;
    return (*env)->NewStringUTF(env, info.accelerator);
}

JNIEXPORT jstring JNICALL Java_ai_bokehlite_BokehPipeline_nativeWeights(JNIEnv *env, jclass cls, jlong h) {
    (void)cls;
    bokeh_info info;
    if (bokeh_get_info(handle(h), &info) != BOKEH_OK) return NULL;
    return (*env)->NewStringUTF(env, info.weights);
}

JNIEXPORT jboolean JNICALL Java_ai_bokehlite_BokehPipeline_nativeNeedsDepth(JNIEnv *env, jclass cls, jlong h) {
    (void)env;
    (void)cls;
    return bokeh_needs_depth(handle(h)) ? JNI_TRUE : JNI_FALSE;
}

/* Portrait: the latest render's person share, or -1 when no portrait render has run. */
JNIEXPORT jfloat JNICALL Java_ai_bokehlite_BokehPipeline_nativePersonShare(JNIEnv *env, jclass cls, jlong h) {
    (void)env;
    (void)cls;
    bokeh_info info;
    if (bokeh_get_info(handle(h), &info) != BOKEH_OK || strcmp(info.track, "portrait") || !info.renders) return -1.f;
    return (jfloat)info.person_share;
}

JNIEXPORT jboolean JNICALL Java_ai_bokehlite_BokehPipeline_nativePersonFound(JNIEnv *env, jclass cls, jlong h) {
    (void)env;
    (void)cls;
    bokeh_info info;
    return bokeh_get_info(handle(h), &info) == BOKEH_OK && info.person_found ? JNI_TRUE : JNI_FALSE;
}
