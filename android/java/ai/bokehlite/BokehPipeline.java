package ai.bokehlite;

/**
 * An exported bokehlite model (or a folder with a portrait export) on LiteRT, through libbokeh.
 *
 * <pre>
 * try (BokehPipeline p = new BokehPipeline(path, BokehPipeline.Accelerator.AUTO, false, 0)) {
 *     int[] argb = new int[w * h];
 *     bitmap.getPixels(argb, 0, w, 0, 0, w, h);
 *     int[] out = p.render(argb, w, h);
 *     result.setPixels(out, 0, w, 0, 0, w, h);
 * }
 * </pre>
 *
 * Pixels are ARGB ints as {@code Bitmap.getPixels} gives them; alpha is kept. Native
 * failures throw {@link BokehException}.
 *
 * <p>Threads: a pipeline may be shared between threads. Every method that reaches the native
 * pipeline holds this object's monitor, so calls on one pipeline run one at a time: renders
 * from two threads run one after the other, and {@link #close()} called while another thread
 * renders (an {@code onDestroy} during a background render) waits for that render to finish,
 * then frees the native pipeline. After {@code close()} every method but {@code close()}
 * throws {@link BokehException} ("the pipeline is closed"); {@code close()} again does
 * nothing. A render on a large photo can take seconds, so an activity that must not block its
 * main thread closes the pipeline from the thread that renders, or after its render ends.
 *
 * A portrait model (export-tflite --track portrait) runs its person segmenter, then itself,
 * then the Eq. 9 blend; a photo without a person comes back unchanged, which
 * {@link #personFound()} tells after the render, so that the app can say so.
 */
public final class BokehPipeline implements AutoCloseable {
    /** Where the model runs: AUTO takes the GPU when the export verified the model there and it runs
     *  every op, else the CPU; GPU refuses a model the export did not verify there (the cpu track). */
    public enum Accelerator { AUTO, CPU, GPU }

    static {
        System.loadLibrary("bokeh_jni");
    }

    private long handle;      // 0 once closed; read and written only under this object's monitor

    public BokehPipeline(String path) {
        this(path, Accelerator.AUTO, false, 0);
    }

    /** @param gpuFp16 GPU arithmetic in float16; @param threads CPU threads, 0: LiteRT's choice */
    public BokehPipeline(String path, Accelerator accelerator, boolean gpuFp16, int threads) {
        long h = nativeOpen(path, accelerator.ordinal(), gpuFp16, threads);
        synchronized (this) {
            handle = h;
        }
    }

    /** Render a cpu-, gpu-track or portrait pipeline; a new array of the same size. */
    public int[] render(int[] argb, int width, int height) {
        return render(argb, width, height, null, Float.NaN, Float.NaN, false);
    }

    /**
     * Portrait: with an aperture (blur radius in photo pixels per unit of disparity; NaN: the
     * sidecar's default, 20). One that is negative, infinite or above the model's largest
     * throws {@link BokehException} with libbokeh's message.
     */
    public int[] render(int[] argb, int width, int height, float aperture) {
        return render(argb, width, height, null, Float.NaN, aperture, true);
    }

    /**
     * Render track: disparity is width * height values in [0, 1] (larger = nearer); focus the
     * in-focus disparity and aperture in photo pixels, NaN for the defaults (values outside
     * their ranges, infinities included, throw {@link BokehException}).
     */
    public int[] render(int[] argb, int width, int height, float[] disparity, float focus, float aperture) {
        if (disparity == null) throw new BokehException("a render-track model needs a disparity map");
        return render(argb, width, height, disparity, focus, aperture, true);
    }

    /** focus and aperture go to libbokeh as they are (NaN: its default), which checks them. */
    private int[] render(int[] argb, int width, int height, float[] disparity, float focus, float aperture,
                         boolean withDepth) {
        if (argb == null || width < 0 || height < 0 || argb.length < (long) width * height)
            throw new BokehException("expected " + width + " x " + height + " pixels");
        if (disparity != null && disparity.length < (long) width * height)
            throw new BokehException("expected " + width + " x " + height + " disparity values");
        int[] out = new int[argb.length];
        synchronized (this) {
            nativeRender(live(), argb, width, height, out, disparity, focus, aperture, withDepth);
        }
        return out;
    }

    /** "gpu" or "cpu": where the model runs (portrait: the portrait model, not its segmenter). */
    public synchronized String accelerator() {
        return nativeAccelerator(live());
    }

    /** The model's weights, from its contract: "trained", "untrained" (seeded: a render blurs the
     *  whole photo, so tell the user), "analytic" (the render and portrait tracks) or "unknown". */
    public synchronized String weights() {
        return nativeWeights(live());
    }

    public synchronized boolean needsDepth() {
        return nativeNeedsDepth(live());
    }

    /** Portrait: whether the latest render found a person; if not, the photo came back unchanged. */
    public synchronized boolean personFound() {
        return nativePersonFound(live());
    }

    /** Portrait: the share of the photo the latest render took for the person; -1 before one. */
    public synchronized float personShare() {
        return nativePersonShare(live());
    }

    /** Frees the native pipeline, once a render in progress on another thread has ended. */
    @Override
    public synchronized void close() {
        if (handle != 0) {
            long h = handle;
            handle = 0;
            nativeClose(h);
        }
    }

    /** The native handle; the caller holds this object's monitor. */
    private long live() {
        if (handle == 0) throw new BokehException("the pipeline is closed");
        return handle;
    }

    private static native long nativeOpen(String path, int accelerator, boolean fp16, int threads);
    private static native void nativeClose(long handle);
    private static native void nativeRender(long handle, int[] in, int width, int height, int[] out,
                                            float[] disparity, float focus, float aperture, boolean withDepth);
    private static native String nativeAccelerator(long handle);
    private static native String nativeWeights(long handle);
    private static native boolean nativeNeedsDepth(long handle);
    private static native boolean nativePersonFound(long handle);
    private static native float nativePersonShare(long handle);
}
