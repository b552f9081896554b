"""The paper beside us: AIM 2020 Rendering Realistic Bokeh results (Luo et al., Tables 2, 3, 9).

Values are copied from the paper's Tables 2, 3 and 9 (Luo et al., "Bokeh Rendering from
Defocus Estimation", AIM 2020 Rendering Realistic Bokeh challenge).
AIA-Smart is the paper's own team ("Bokeh Rendering from Defocus Estimation").
The challenge timed 1024x1536 EBB! frames on its own hardware, not this machine.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

OUR_PAPER_TEAM = "AIA-Smart"
HARDWARE_NOTE = ("AIM 2020 runtimes were measured by the challenge on its own hardware, which differs "
                 "from this machine; compare ratios and orders of magnitude, not absolute seconds.")


@dataclass(frozen=True)
class PaperRow:
    team: str
    mos: float
    psnr: float
    ssim: float
    runtime_s: float


TABLE2_CPU = (   # Track 1: CPU, sorted by MOS
    PaperRow("Airia-bokeh", 4.2, 23.58, 0.8770, 5.52),
    PaperRow("AIA-Smart", 3.8, 23.56, 0.8829, 1.71),
    PaperRow("CET_SP", 3.3, 21.91, 0.8201, 1.17),
    PaperRow("CET_CVLab", 3.2, 23.05, 0.8591, 1.17),
    PaperRow("Team Horizon", 3.2, 23.27, 0.8818, 19.27),
    PaperRow("IPCV_IITM", 2.5, 23.77, 0.8866, 27.24),
    PaperRow("CET21_CV", 1.3, 22.80, 0.8628, 0.74),
    PaperRow("CET_ECE", 1.2, 22.85, 0.8629, 0.74),
)
TABLE3_GPU = (   # Track 2: GPU (the paper's entry timed as TFLite)
    PaperRow("Airia-bokeh", 4.2, 23.58, 0.8770, 1.52),
    PaperRow("AIA-Smart", 3.8, 23.94, 0.8842, 15.2),
    PaperRow("CET_CVLab", 3.2, 23.05, 0.8591, 2.75),
)
TABLE9_PYTORCH_GPU_S = 0.055   # inference stage, PyTorch on GPU, Val470

PAPER_TABLES = {
    "cpu": ("Table 2 (AIM 2020 Track 1: CPU)", TABLE2_CPU),
    "gpu": ("Table 3 (AIM 2020 Track 2: GPU)", TABLE3_GPU),
}
PAPER_JSON_KEYS = {"cpu": "table2_cpu", "gpu": "table3_gpu"}   # track -> its table in paper_json()
# Tracks the paper has no row for, and why: their timings are reported, never put beside the tables.
NO_PAPER_ROW = {
    "render": "the render track (depth-guided renderer: photo + disparity, focus, aperture) has no row in "
              "the paper's tables: AIM 2020 timed the defocus-estimating model on photos alone (Tables 2, 3 "
              "and 9), so there is nothing to compare its timings with",
    "portrait": "the portrait track (person segmenter + depth-guided renderer) has no row in the paper's "
                "tables: the paper renders from the defocus it estimates, not from a person mask, so "
                "there is nothing to compare its timings with",
}


def paper_json() -> dict:
    return {"table2_cpu": [asdict(r) for r in TABLE2_CPU], "table3_gpu": [asdict(r) for r in TABLE3_GPU],
            "table9_pytorch_gpu_inference_s": TABLE9_PYTORCH_GPU_S, "our_paper_team": OUR_PAPER_TEAM,
            "hardware_note": HARDWARE_NOTE, "no_paper_row": dict(NO_PAPER_ROW)}
