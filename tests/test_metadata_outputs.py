"""export-tflite --outputs bokeh: one image in, one image out, which ML Model Binding wraps;
bokeh-render samples its bokeh up (no defocus, so no full-resolution Eq. 9)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bokehlite import contract
from bokehlite.tflite_metadata import decode_metadata, model_metadata_buffer, signature_io

SIZE = (128, 192)


@pytest.fixture(scope="session")
def bokeh_only(tmp_path_factory):
    """(path, report) of a tiny gpu-track export with the bokeh output alone."""
    from bokehlite.export.pipeline import export_track
    from bokehlite.export.plan import ExportPlan
    from bokehlite.model import BackboneConfig
    out = tmp_path_factory.mktemp("bokeh_only")
    report = export_track(ExportPlan.build("gpu", SIZE, backbone=BackboneConfig.tiny(), parity_images=1,
                                           outputs=contract.BOKEH_ONLY), out)
    return out / f"{contract.artifact_stem('gpu', SIZE, outputs=contract.BOKEH_ONLY)}.tflite", report


def export_cli(*args):
    return subprocess.run([sys.executable, "-m", "bokehlite.export.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_the_bokeh_only_export_has_its_own_name_one_output_and_metadata_for_it(bokeh_only):
    path, report = bokeh_only
    assert path.name == "bokeh_gpu_128x192_bokeh.tflite" and path.with_suffix(".json").is_file()
    data = path.read_bytes()
    assert signature_io(data) == (["image"], ["bokeh"])
    (sub,) = decode_metadata(model_metadata_buffer(data))["subgraph_metadata"]
    assert [t["name"] for t in sub["input_tensor_metadata"]] == ["image"]
    (out,) = sub["output_tensor_metadata"]
    assert out["name"] == "bokeh"
    assert out["content"]["content_properties"]["ImageProperties"]["color_space"] == "RGB"
    assert [o["name"] for o in report["outputs"]] == ["bokeh"]
    assert report["outputs"][0]["shape"] == [1, *SIZE, 3]
    assert report["postprocess"]["blend"] == "none" and "model size's resolution" in report["outputs"][0]["meaning"]
    assert contract.artifact_stem("cpu", SIZE, "int8", ("bokeh",)) == "bokeh_cpu_128x192_int8_bokeh"
    assert contract.artifact_stem("gpu", SIZE, None, contract.TRACKS["gpu"].outputs) == "bokeh_gpu_128x192"


def test_its_bokeh_is_the_full_models_bokeh(bokeh_only, tiny_export):
    from bokehlite.runtime import BokehRenderer
    full, _ = tiny_export("gpu")
    assert contract.artifact_stem("gpu", SIZE) == full.stem     # same size, same seeded weights
    x = np.random.default_rng(1).uniform(0, 1, (1, *SIZE, 3)).astype(np.float32)
    one = BokehRenderer(bokeh_only[0]).run_model(x)
    all_ = BokehRenderer(full).run_model(x)
    assert list(one) == ["bokeh"]
    np.testing.assert_allclose(one["bokeh"], all_["bokeh"], atol=2e-3)


def test_bokeh_render_samples_its_bokeh_up_to_the_photo(bokeh_only):
    from bokehlite.runtime import BokehRenderer
    from bokehlite.runtime.fit import Letterbox
    renderer = BokehRenderer(bokeh_only[0])
    assert renderer.contract.defocus is None
    photo = np.random.default_rng(2).integers(0, 255, (300, 500, 3), dtype=np.uint8)
    result = renderer.render(photo)
    assert result.shape == photo.shape and result.dtype == photo.dtype
    x, box = renderer.prepare(photo)
    bokeh = renderer.run_model(x)["bokeh"][0]
    expected = np.rint(np.clip(box.sample(bokeh, slice(0, 300), slice(0, 500)), 0, 1) * 255)
    assert isinstance(box, Letterbox)
    assert np.abs(result.astype(int) - expected.astype(int)).max() <= 1
    # Grey photos come back grey, as with the Eq. 9 blend.
    grey = renderer.render(photo[:, :, 0].copy())
    assert grey.shape == (300, 500)


def test_outputs_bokeh_is_refused_where_it_cannot_be_built(tmp_path):
    for args, wanted in ((["--track", "portrait", "--outputs", "bokeh"], "does not go with --track portrait"),
                         (["--track", "cpu", "--precision", "int8", "--outputs", "bokeh"], "int8"),
                         (["--outputs", "blur"], "invalid choice")):
        proc = export_cli(*args, "-o", str(tmp_path))
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and wanted in lines[0], proc.stderr
    assert list(tmp_path.iterdir()) == []
