package ai.bokehlite;

/** A failure of the native pipeline, with libbokeh's one-line message. */
public class BokehException extends RuntimeException {
    public BokehException(String message) {
        super(message);
    }
}
