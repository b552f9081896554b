"""The sidecar's checks in the Python runtime, on hand-made sidecars (no model needed): the
host block both runtimes read, and malformed sidecars as one ModelError line, never a traceback."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from bokehlite import contract
from bokehlite.runtime.errors import ModelError
from bokehlite.runtime.runner import TensorSpec
from bokehlite.runtime.sidecar import check_contract, read_sidecar

SIZE = (128, 192)
OUTPUTS = {"bokeh": (1, 128, 192, 3), "blur": (1, 128, 192, 3), "defocus": (1, 128, 192, 1)}


def sidecar(track: str = "gpu") -> dict:
    tc = contract.TRACKS[track]
    outputs = OUTPUTS if track == "gpu" else {"bokeh": OUTPUTS["bokeh"], "defocus": OUTPUTS["defocus"]}
    return {"format": contract.SIDECAR_FORMAT, "version": contract.SIDECAR_VERSION, "track": track,
            "input_size": list(SIZE), "inputs": list(contract.input_specs(tc.inputs, SIZE).values()),
            "outputs": [contract.output_spec(n, s, track) for n, s in outputs.items()],
            "postprocess": contract.postprocess(tc.blend_source, 20.0, 0.125), "host": contract.host_parameters()}


def signature(data: dict):
    inputs = {n: TensorSpec(contract.INPUTS[n].shape(SIZE), np.float32) for n in contract.TRACKS[data["track"]].inputs}
    return inputs, {n: TensorSpec(s, np.float32) for n, s in OUTPUTS.items() if n in {o["name"] for o in
                                                                                    sidecar(data["track"])["outputs"]}}


def check(data: dict):
    return check_contract("m.tflite", data, *signature(data))


def test_the_host_numbers_come_from_the_sidecar():
    data = sidecar("render")
    data["host"] = {**data["host"], "default_aperture": 7.5, "focus_window": 5, "centre_box": 0.25}
    host = check(data).host
    assert (host.default_aperture, host.focus_window, host.centre_box) == (7.5, 5, 0.25)
    assert host.max_aperture == contract.INPUTS["aperture"].value_range[1] == 100.0
    assert check(sidecar("gpu")).host.min_person == contract.MIN_PERSON


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.pop("host"), "no 'host' block"),
    (lambda s: s["host"].update(focus_window=4), "focus_window must be an odd integer"),
    (lambda s: s["host"].update(centre_box=0), "centre_box must be a number in (0, 1]"),
    (lambda s: s["host"].update(min_person="0.01"), "min_person must be a number"),
    (lambda s: s["host"].update(default_aperture=float("inf")), "default_aperture must be a number"),
    # issue 31, case 18: these ended in a traceback
    (lambda s: s["outputs"][0].update(name=5), "outputs must be a list of objects with a name"),
    (lambda s: s["postprocess"].update(source=["blur"]), "postprocess source ['blur'] is not one of the outputs"),
    (lambda s: s["postprocess"].update(defocus={}), "postprocess defocus {} is not one of the outputs"),
    (lambda s: s["postprocess"].update(eta=float("inf")), "eta and tau must be finite numbers"),
])
def test_a_malformed_sidecar_is_one_model_error(edit, message):
    data = copy.deepcopy(sidecar())
    edit(data)
    with pytest.raises(ModelError) as caught:
        check(data)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_whole_numbers_written_as_floats_are_sizes_as_libbokeh_reads_them():
    data = sidecar()
    data["input_size"] = [128.0, 192.0]
    data["outputs"][0]["shape"] = [1, 128.0, 192, 3]
    assert check(data).input_size == SIZE
    data["input_size"] = [128.5, 192]
    with pytest.raises(ModelError, match="input_size must be"):
        check(data)


@pytest.mark.parametrize("text, message", [
    ("\ufeff" + json.dumps(sidecar()), "not valid JSON"),                        # a UTF-8 BOM, as cJSON is told
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
    ('{"postprocess": {"eta": 1e400}}', None),                                  # parses (inf); refused later
])
def test_sidecar_text_that_json_refuses_is_one_model_error(tmp_path, text, message):
    model = tmp_path / "m.tflite"
    model.with_suffix(".json").write_text(text, encoding="utf-8")
    if message is None:
        assert read_sidecar(model)["postprocess"]["eta"] == float("inf")
        return
    with pytest.raises(ModelError, match=message):
        read_sidecar(model)


def test_rules_by_track_name_the_contract_pages_rules():
    assert contract.track_rules("gpu") == ["R1", "R2", "R3", "R5", "R6"]
    assert contract.track_rules("render")[-5:] == ["R4", "R7", "R8", "R9", "R10"]
    assert contract.track_rules("portrait")[-1] == "R11"
    assert "R12" in contract.track_rules("gpu", bokeh_only=True) and "R6" not in contract.track_rules("gpu", True)
