import ai.bokehlite.BokehPipeline;

import java.awt.image.BufferedImage;
import java.io.File;
import javax.imageio.ImageIO;

/**
 * The JVM-side check of the JNI bridge: java -Djava.library.path=BUILD -cp CLASSES RenderPng
 * MODEL IN.png OUT.png [cpu|gpu|auto]. Reads pixels with javax.imageio, renders them through
 * BokehPipeline, writes a PNG (alpha kept when the input has it); prints, for a portrait
 * model, "person found" or "no person", then the accelerator.
 */
public final class RenderPng {
    public static void main(String[] args) throws Exception {
        BufferedImage in = ImageIO.read(new File(args[1]));
        int w = in.getWidth(), h = in.getHeight();
        int[] argb = in.getRGB(0, 0, w, h, null, 0, w);
        BokehPipeline.Accelerator accelerator = args.length > 3
                ? BokehPipeline.Accelerator.valueOf(args[3].toUpperCase()) : BokehPipeline.Accelerator.AUTO;
        try (BokehPipeline pipeline = new BokehPipeline(args[0], accelerator, false, 0)) {
            int[] out = pipeline.render(argb, w, h);
            boolean alpha = in.getColorModel().hasAlpha();
            BufferedImage result = new BufferedImage(w, h, alpha ? BufferedImage.TYPE_INT_ARGB : BufferedImage.TYPE_INT_RGB);
            result.setRGB(0, 0, w, h, out, 0, w);
            ImageIO.write(result, "png", new File(args[2]));
            if (pipeline.personShare() >= 0) System.out.println(pipeline.personFound() ? "person found" : "no person");
            if ("untrained".equals(pipeline.weights())) System.err.println("warning: untrained weights");
            System.out.println(pipeline.accelerator());
        }
    }
}
