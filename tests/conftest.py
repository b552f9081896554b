"""Shared fixtures: real tiny exports, made once per test session."""
from __future__ import annotations

import os

from bokehlite.onednn import cap_isa_for_float16

cap_isa_for_float16()      # before torch is imported: float16 convolutions stall on AVX512-FP16 CPUs

import pytest  # noqa: E402

TINY_SIZES = {"gpu": (128, 192), "cpu": (128, 256), "render": (128, 192)}


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """tiny_export(track) -> (tflite path, report): a real export of a tiny-backbone model
    (the render track has no backbone and ignores it), through ONNX, onnx2tf and the parity
    gates, cached for the session."""
    from bokehlite.contract import artifact_stem
    from bokehlite.export.pipeline import export_track
    from bokehlite.model import BackboneConfig

    out = tmp_path_factory.mktemp("tiny_artifacts")
    cache = {}

    def get(track: str):
        if track not in cache:
            report = export_track(track, TINY_SIZES[track], out, backbone=BackboneConfig.tiny())
            cache[track] = (out / f"{artifact_stem(track, TINY_SIZES[track])}.tflite", report)
        return cache[track]

    return get


@pytest.fixture(scope="session")
def full_size_export(tmp_path_factory):
    """full_size_export(track) -> (tflite path, report): a paper-size 1024x1536 export with one
    parity image, made once per session (the slow tests of several files share it)."""
    from bokehlite.contract import DEFAULT_SIZE, artifact_stem
    from bokehlite.export.pipeline import export_track

    out = tmp_path_factory.mktemp("full_size_artifacts")
    cache = {}

    def get(track: str):
        if track not in cache:
            report = export_track(track, DEFAULT_SIZE, out, parity_images=1)
            cache[track] = (out / f"{artifact_stem(track, DEFAULT_SIZE)}.tflite", report)
        return cache[track]

    return get


@pytest.fixture(scope="session")
def gpu_adapter():
    """The Vulkan adapter LiteRT's GPU accelerator runs on here. Without one the test skips,
    unless BOKEHLITE_REQUIRE_GPU is set (.ci/run sets it: there a missing adapter is a broken
    install, not a reason to skip)."""
    from bokehlite.runtime import BackendError
    from bokehlite.runtime.litert_gpu import find_adapter
    try:
        return find_adapter()
    except BackendError as exc:
        if os.environ.get("BOKEHLITE_REQUIRE_GPU"):
            pytest.fail(f"BOKEHLITE_REQUIRE_GPU is set, but: {exc}")
        pytest.skip(str(exc))
