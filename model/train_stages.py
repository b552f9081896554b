"""What train-bokeh trains: its name and the model preset behind each --stage.

Shared by the command line (train_cli.py) and the loop (train.py), torch-free, so that
neither imports the other.
"""
from __future__ import annotations

PROG = "train-bokeh"
# --stage -> the BokehNet preset it trains (paper section 3.3: stages 1-3; the cpu track).
PRESET = {"1": "stage1", "2": "stage2", "3": "stage3", "cpu-track": "cpu-track"}
STAGES = tuple(PRESET)
