"""ONNX -> TFLite, run as a child process so TensorFlow's noise goes to a log file.

onnx2tf turns the ONNX graph into a TensorFlow SavedModel (NCHW -> NHWC). We then
convert that SavedModel ourselves with TFLITE_BUILTINS only: onnx2tf's own
converter always enables Flex (SELECT_TF_OPS) ops and writes no signature, while
ours fails on any op outside the builtin set and keeps the `serving_default`
signature with the ONNX input and output names.

Offline by construction: onnx2tf downloads a calibration sample for 3-channel
image inputs unless `calibration_image_sample_data_20x128x128x3_float32.npy` is in
its working directory, so we write one from our synthetic scenes first. onnx2tf
also rewrites its input file, so it is given a copy.

Usage: python -m bokehlite.export.tf_convert MODEL.onnx WORKDIR OUT.tflite {float32,float16,int8} OUT1,OUT2,...
       [CALIBRATION_DIR]   (int8 only: static int8 calibrated on the photos there, see calibration.py)
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np

CALIBRATION_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"


def write_calibration_sample(workdir: Path) -> None:
    from ..model.synthetic import test_scene
    data = np.stack([test_scene(128, 128, seed) for seed in range(20)]).astype(np.float32)
    np.save(workdir / CALIBRATION_FILE, data)


def onnx_to_saved_model(onnx_path: Path, workdir: Path) -> Path:
    import onnx2tf
    write_calibration_sample(workdir)
    copy = workdir / "model_for_onnx2tf.onnx"
    shutil.copyfile(onnx_path, copy)
    saved_model = workdir / "saved_model"
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        onnx2tf.convert(input_onnx_file_path=str(copy), output_folder_path=str(saved_model),
                        output_signaturedefs=True, not_use_onnxsim=True, non_verbose=True,
                        disable_model_save=False)
    finally:
        os.chdir(cwd)
    return saved_model


def name_outputs(saved_model: Path, output_names: list[str], workdir: Path) -> Path:
    """Re-save the SavedModel with a `serving_default` whose outputs carry our names
    (onnx2tf numbers them output_0, output_1, ... in ONNX output order)."""
    import tensorflow as tf
    loaded = tf.saved_model.load(str(saved_model))
    signature = loaded.signatures["serving_default"]
    specs = signature.structured_input_signature[1]

    @tf.function(input_signature=[tf.TensorSpec(s.shape, s.dtype, name=n) for n, s in specs.items()])
    def serve(*args):
        outputs = signature(**dict(zip(specs, args)))
        return {name: outputs[f"output_{i}"] for i, name in enumerate(output_names)}

    named = workdir / "saved_model_named"
    module = tf.Module()
    module.inner = loaded
    tf.saved_model.save(module, str(named), signatures={"serving_default": serve})
    return named


def saved_model_to_tflite(saved_model: Path, out_path: Path, precision: str,
                          calibration: Path | None = None) -> None:
    import tensorflow as tf
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = False
    if precision == "int8" and calibration is not None:
        # Static int8: a float32 model, then ai-edge-quantizer's per-op recipe (calibration.py).
        from .calibration import quantize_static
        from .tflite_inspect import TfliteModel
        float_path = out_path.with_name("float32_for_calibration.tflite")
        float_path.write_bytes(converter.convert())
        model = TfliteModel(float_path)
        h, w = model.shape(int(model.graph.inputs[0]))[1:3]
        out_path.write_bytes(quantize_static(float_path.read_bytes(), calibration, (h, w)))
        float_path.unlink()
        return
    if precision == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        # Dynamic range: int8 weights, float32 activations and I/O (XNNPACK quantizes activations
        # on the fly). With no representative dataset only weighted ops are touched, so the
        # softmax, divisions and radiance power stay float; export/quantization.py checks that.
        # The renderer's disk kernels go back to float32 (float_blurs.py says why).
        from .float_blurs import float_depthwise_filters
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        out_path.write_bytes(float_depthwise_filters(converter.convert())[0])
        return
    out_path.write_bytes(converter.convert())


def main(argv: list[str]) -> int:
    # Absolute paths: onnx2tf runs with the working folder changed to `workdir`.
    onnx_path, workdir, out_path = (Path(a).resolve() for a in argv[:3])
    precision = argv[3]
    output_names = argv[4].split(",")
    saved_model = onnx_to_saved_model(onnx_path, workdir)
    saved_model = name_outputs(saved_model, output_names, workdir)
    calibration = Path(argv[5]).resolve() if len(argv) > 5 else None
    saved_model_to_tflite(saved_model, out_path, precision, calibration)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
