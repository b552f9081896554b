"""The oneDNN float16 stall guard (bokehlite/onednn.py)."""
import os
import subprocess
import sys

from bokehlite.onednn import CAP, has_avx512_fp16


def test_avx512_fp16_is_read_from_the_flags_line(tmp_path):
    with_flag, without = tmp_path / "with", tmp_path / "without"
    with_flag.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_fp16 amx_tile\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\nbugs\t: avx512_fp16\n")
    assert has_avx512_fp16(str(with_flag))
    assert not has_avx512_fp16(str(without))
    assert not has_avx512_fp16(str(tmp_path / "missing"))


def _isa_after_importing_the_model(env: dict) -> str:
    code = "import os, bokehlite.model; print(os.environ.get('DNNL_MAX_CPU_ISA', ''))"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_importing_the_model_caps_onednn_on_this_cpu_and_keeps_a_users_value():
    env = {k: v for k, v in os.environ.items() if k != "DNNL_MAX_CPU_ISA"}
    assert _isa_after_importing_the_model(env) == (CAP if has_avx512_fp16() else "")
    assert _isa_after_importing_the_model({**env, "DNNL_MAX_CPU_ISA": "AVX2"}) == "AVX2"
