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
 * Pixels are ARGB ints as {@code Bitmap.getPixels} gives them; alpha is kept. One pipeline
 * is used by one thread at a time. Native failures throw {@link BokehException}.
 *
 * A portrait model (export-tflite --track portrait) runs its person segmenter, then itself,
 * then the Eq. 9 blend; a photo without a person comes back unchanged, which
 * {@link #personFound()} tells after the render, so that the app can say so.
 */
public final class BokehPipeline implements AutoCloseable {
    /** Where the model runs: AUTO takes the GPU when it runs every op, else the CPU. */
    public enum Accelerator { AUTO, CPU, GPU }

    static {
        System.loadLibrary("bokeh_jni");
    }

    private long handle;

    public BokehPipeline(String path) {
        this(path, Accelerator.AUTO, false, 0);
    }

    /** @param gpuFp16 GPU arithmetic in float16; @param threads CPU threads, 0: LiteRT's choice */
    public BokehPipeline(String path, Accelerator accelerator, boolean gpuFp16, int threads) {
        handle = nativeOpen(path, accelerator.ordinal(), gpuFp16, threads);
    }

    /** Render a cpu-, gpu-track or portrait pipeline; a new array of the same size. */
    public int[] render(int[] argb, int width, int height) {
        return render(argb, width, height, null, Float.NaN, Float.NaN, false);
    }

    /** Portrait: with an aperture (blur radius in photo pixels per unit of disparity; NaN: 20). */
    public int[] render(int[] argb, int width, int height, float aperture) {
        return render(argb, width, height, null, Float.NaN, aperture, true);
    }

    /**
     * Render track: disparity is width * height values in [0, 1] (larger = nearer); focus the
     * in-focus disparity and aperture in photo pixels, NaN for the defaults.
     */
    public int[] render(int[] argb, int width, int height, float[] disparity, float focus, float aperture) {
        if (disparity == null) throw new BokehException("a render-track model needs a disparity map");
        return render(argb, width, height, disparity, focus, aperture, true);
    }

    private int[] render(int[] argb, int width, int height, float[] disparity, float focus, float aperture,
                         boolean withDepth) {
        long h = live();
        if (argb == null || width < 0 || height < 0 || argb.length < (long) width * height)
            throw new BokehException("expected " + width + " x " + height + " pixels");
        if (disparity != null && disparity.length < (long) width * height)
            throw new BokehException("expected " + width + " x " + height + " disparity values");
        int[] out = new int[argb.length];
        nativeRender(h, argb, width, height, out, disparity, focus, aperture, withDepth);
        return out;
    }

    /** "gpu" or "cpu": where the model runs (portrait: the portrait model, not its segmenter). */
    public String accelerator() {
        return nativeAccelerator(live());
    }

    public boolean needsDepth() {
        return nativeNeedsDepth(live());
    }

    /** Portrait: whether the latest render found a person; if not, the photo came back unchanged. */
    public boolean personFound() {
        return nativePersonFound(live());
    }

    /** Portrait: the share of the photo the latest render took for the person; -1 before one. */
    public float personShare() {
        return nativePersonShare(live());
    }

    @Override
    public void close() {
        if (handle != 0) {
            nativeClose(handle);
            handle = 0;
        }
    }

    private long live() {
        if (handle == 0) throw new IllegalStateException("the pipeline is closed");
        return handle;
    }

    private static native long nativeOpen(String path, int accelerator, boolean fp16, int threads);
    private static native void nativeClose(long handle);
    private static native void nativeRender(long handle, int[] in, int width, int height, int[] out,
                                            float[] disparity, float focus, float aperture, boolean withDepth);
    private static native String nativeAccelerator(long handle);
    private static native boolean nativeNeedsDepth(long handle);
    private static native boolean nativePersonFound(long handle);
    private static native float nativePersonShare(long handle);
}
