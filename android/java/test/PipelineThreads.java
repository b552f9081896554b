import ai.bokehlite.BokehException;
import ai.bokehlite.BokehPipeline;

import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * BokehPipeline shared between threads, and its argument checks, on the JVM:
 * java -Djava.library.path=BUILD -cp CLASSES PipelineThreads MODE MODEL [ROUNDS]
 *
 * close-during-render: a thread renders in a loop while the main thread closes the pipeline
 *   after a random moment, ROUNDS times: the renders end with BokehException ("the pipeline
 *   is closed"), never a crash; every call after close() throws BokehException.
 * concurrent-renders: two threads render on one pipeline at once, ROUNDS times each; every
 *   result is the pixels a render alone gives.
 * aperture (a render-track MODEL): an infinite, a negative and a huge aperture throw
 *   BokehException with libbokeh's message; NaN takes the default.
 * Prints "ok" and exits 0, or says what failed and exits 1.
 */
public final class PipelineThreads {
    static final int W = 320, H = 240;

    static int[] photo() {
        int[] argb = new int[W * H];
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                argb[y * W + x] = 0xff000000 | (x * 255 / W) << 16 | (y * 255 / H) << 8 | ((x ^ y) & 255);
        return argb;
    }

    static BokehPipeline open(String model) {
        return new BokehPipeline(model, BokehPipeline.Accelerator.CPU, false, 1);
    }

    static void fail(String what) {
        System.out.println("FAILED: " + what);
        System.out.flush();
        System.exit(1);
    }

    static void expectClosed(String what, Runnable call) {
        try {
            call.run();
            fail(what + " after close() did not throw");
        } catch (BokehException e) {
            if (!e.getMessage().contains("closed")) fail(what + " after close(): " + e.getMessage());
        }
    }

    static void closeDuringRender(String model, int rounds) throws Exception {
        int[] argb = photo();
        Random random = new Random(7);
        int renders = 0;
        for (int round = 0; round < rounds; round++) {
            BokehPipeline p = open(model);
            AtomicReference<Throwable> ended = new AtomicReference<>();
            AtomicInteger done = new AtomicInteger();
            Thread renderer = new Thread(() -> {
                try {
                    while (true) {
                        p.render(argb, W, H);
                        done.incrementAndGet();
                    }
                } catch (Throwable t) {
                    ended.set(t);
                }
            });
            renderer.start();
            while (done.get() == 0 && renderer.isAlive()) Thread.sleep(1);
            Thread.sleep(random.nextInt(20));
            p.close();                                   // while the renderer is (most likely) in a render
            renderer.join(60000);
            if (renderer.isAlive()) fail("round " + round + ": the render thread did not end after close()");
            Throwable t = ended.get();
            if (!(t instanceof BokehException) || !t.getMessage().contains("closed"))
                fail("round " + round + ": the render thread ended with " + t);
            renders += done.get();
            expectClosed("render()", () -> p.render(argb, W, H));
            expectClosed("accelerator()", p::accelerator);
            expectClosed("needsDepth()", p::needsDepth);
            p.close();                                   // again: nothing
        }
        System.out.println("rounds " + rounds + " renders " + renders);
    }

    static void concurrentRenders(String model, int rounds) throws Exception {
        int[] argb = photo();
        try (BokehPipeline p = open(model)) {
            int[] expected = p.render(argb, W, H);
            AtomicInteger wrong = new AtomicInteger();
            AtomicReference<Throwable> error = new AtomicReference<>();
            Thread[] threads = new Thread[2];
            for (int i = 0; i < threads.length; i++) {
                threads[i] = new Thread(() -> {
                    try {
                        for (int r = 0; r < rounds; r++)
                            if (!Arrays.equals(p.render(argb, W, H), expected)) wrong.incrementAndGet();
                    } catch (Throwable t) {
                        error.set(t);
                    }
                });
                threads[i].start();
            }
            for (Thread t : threads) t.join();
            if (error.get() != null) fail("a render thread threw " + error.get());
            if (wrong.get() > 0) fail(wrong.get() + " of " + 2 * rounds + " concurrent renders gave other pixels");
        }
        System.out.println("renders " + 2 * rounds);
    }

    static void aperture(String model) {
        int[] argb = photo();
        float[] disparity = new float[W * H];
        for (int i = 0; i < disparity.length; i++) disparity[i] = (i / W) / (float) H;
        try (BokehPipeline p = open(model)) {
            if (!p.needsDepth()) fail("not a render-track model");
            p.render(argb, W, H, disparity, Float.NaN, Float.NaN);          // the defaults
            for (float a : new float[] {Float.POSITIVE_INFINITY, -1f, Float.MAX_VALUE}) {
                try {
                    p.render(argb, W, H, disparity, Float.NaN, a);
                    fail("aperture " + a + " was taken");
                } catch (BokehException e) {
                    if (!e.getMessage().startsWith("expected aperture in [0, "))
                        fail("aperture " + a + ": " + e.getMessage());
                    System.out.println("aperture " + a + ": " + e.getMessage());
                }
            }
        }
    }

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 20;
        switch (args[0]) {
            case "close-during-render": closeDuringRender(args[1], rounds); break;
            case "concurrent-renders": concurrentRenders(args[1], rounds); break;
            case "aperture": aperture(args[1]); break;
            default: fail("unknown mode " + args[0]);
        }
        System.out.println("ok");
    }
}
