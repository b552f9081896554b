"""The one contract: names, sizes and the sidecar every stage reads and writes through it."""
from __future__ import annotations

import json
import os
import stat

import pytest

from bokehlite import contract
from bokehlite.files import atomic_write
from bokehlite.runtime import BokehRenderer


def test_artifact_names_carry_a_non_default_precision():
    assert contract.artifact_stem("gpu", (1024, 1536)) == "bokeh_gpu_1024x1536"
    assert contract.artifact_stem("gpu", (1024, 1536), "float16") == "bokeh_gpu_1024x1536"
    assert contract.artifact_stem("gpu", (512, 768), "float32") == "bokeh_gpu_512x768_float32"
    assert contract.artifact_stem("cpu", (512, 768), "float16") == "bokeh_cpu_512x768_float16"
    with pytest.raises(ValueError, match="unknown track 'tpu'"):
        contract.artifact_stem("tpu", (512, 768))


@pytest.mark.parametrize("text, expected", [("1024x1536", (1024, 1536)), ("64X96", (64, 96))])
def test_sizes_parse(text, expected):
    assert contract.parse_size(text) == expected


@pytest.mark.parametrize("text", ["1024", "axb", "0x64", "-64x64", "64x64x3", ""])
def test_bad_sizes_name_the_expected_form(text):
    with pytest.raises(ValueError, match="HxW|positive"):
        contract.parse_size(text)


def test_radius_cap_is_the_largest_stage3_kernel():
    from bokehlite.model.config import STAGE3_KERNELS
    assert STAGE3_KERNELS[-1] == 2 * contract.MAX_BLUR_RADIUS + 1 == 69


def test_sidecar_inputs_and_eq9_come_from_the_contract_and_the_exported_model(tiny_export):
    from bokehlite.model import BokehNet, stage_config
    from bokehlite.model.depth_render import DepthRenderNet
    path, _ = tiny_export("render")
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["inputs"] == list(contract.input_specs(contract.TRACKS["render"].inputs, (128, 192)).values())
    assert (sidecar["postprocess"]["eta"], sidecar["postprocess"]["tau"]) == (8 * 34.0, 0.5 / 34)
    assert (sidecar["postprocess"]["eta"], sidecar["postprocess"]["tau"]) == DepthRenderNet().eq9
    path, _ = tiny_export("gpu")
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert (sidecar["postprocess"]["eta"], sidecar["postprocess"]["tau"]) == (20.0, 0.125)
    assert BokehNet(stage_config("inference", eta=12.0)).eq9 == (12.0, 0.125)


def test_two_precisions_of_one_track_share_a_folder(tiny_export, tmp_path):
    import shutil
    from bokehlite.export.pipeline import export_track
    from bokehlite.export.plan import ExportPlan
    from bokehlite.model import BackboneConfig
    shared, _ = tiny_export("gpu")                                       # float16, the gpu default
    for path in shared.parent.glob(f"{shared.stem}.*"):                  # a copy: the session's folder stays as made
        shutil.copy(path, tmp_path)
    default = tmp_path / shared.name
    report = export_track(ExportPlan.build("gpu", (128, 192), backbone=BackboneConfig.tiny(), precision="float32"),
                          default.parent)
    other = default.parent / "bokeh_gpu_128x192_float32.tflite"
    assert default.is_file() and other.is_file() and report["precision"] == "float32"
    assert json.loads(default.with_suffix(".json").read_text())["precision"] == "float16"
    assert BokehRenderer(other).contract.precision == "float32"
    assert BokehRenderer(default).contract.precision == "float16"


def test_atomic_writes_get_the_umask_permissions_of_a_plain_open(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "a.bin", b"x")
        with open(tmp_path / "b.bin", "wb") as f:
            f.write(b"x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "a.bin").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o640


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path):
    from bokehlite.files import atomic_open
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as f:
            f.write("half of the new")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
