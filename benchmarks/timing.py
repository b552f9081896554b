"""The benchmark_model protocol: init, first inference, warm-up, steady state.

init      model load + interpreter/session creation (whatever `open_model` does);
first     the first inference alone (lazy allocation, delegate set-up, caches);
warm-up   at least `warmup_runs` runs and at least `warmup_secs` seconds;
steady    at least `runs` runs and at least `min_secs` seconds; only these are summarized.

As in benchmark_model, each loop also stops once `max_secs` have passed and at least
one run is done, even short of `runs`: a slow model on a slow machine ends in bounded
time. A loop stopped that way says so (`capped`), so a short count is never mistaken
for the protocol asked for.

Only the model call is timed; picking the next input is outside the window.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

from .stats import summarize


@dataclass(frozen=True)
class Protocol:
    runs: int = 20
    min_secs: float = 1.0
    warmup_runs: int = 1
    warmup_secs: float = 0.5
    max_secs: float = 150.0     # benchmark_model's default

    def __post_init__(self):
        if (self.runs < 1 or self.warmup_runs < 0 or self.min_secs < 0 or self.warmup_secs < 0
                or not self.max_secs > 0):
            raise ValueError(f"invalid protocol {self}")

    def to_dict(self) -> dict:
        return asdict(self)


def measure(open_model: Callable[[], Any], images: Sequence[Any], protocol: Protocol,
            clock: Callable[[], float] = time.perf_counter) -> tuple[dict, Any, Any]:
    """Time `open_model()`, then its `.run` on `images` (cycled, each `.prepare`d first).

    `open_model` returns an object with `prepare(image) -> input` (untimed: layout
    conversion) and `run(input) -> outputs` (timed). Returns (timings in ms, the
    opened model, output of the first inference). `capped` (steady state) and
    `warmup.capped` are True where a loop stopped at `max_secs` short of its minimums.
    """
    if not images:
        raise ValueError("no inputs to time")
    t0 = clock()
    model = open_model()
    init_ms = (clock() - t0) * 1e3
    inputs = [model.prepare(x) for x in images]
    run = model.run

    t0 = clock()
    first_output = run(inputs[0])
    first_ms = (clock() - t0) * 1e3

    i, warm, warm_capped = 1, 0, False
    start = clock()
    while warm < protocol.warmup_runs or clock() - start < protocol.warmup_secs:
        if warm and clock() - start >= protocol.max_secs:
            warm_capped = True
            break
        run(inputs[i % len(inputs)])
        i, warm = i + 1, warm + 1
    warmup_secs = clock() - start

    samples, capped = [], False
    start = clock()
    while len(samples) < protocol.runs or clock() - start < protocol.min_secs:
        if samples and clock() - start >= protocol.max_secs:
            capped = True
            break
        x = inputs[i % len(inputs)]
        t0 = clock()
        run(x)
        samples.append((clock() - t0) * 1e3)
        i += 1
    return {"init_ms": init_ms, "first_ms": first_ms,
            "warmup": {"count": warm, "secs": warmup_secs, "capped": warm_capped},
            "steady": summarize(samples), "steady_secs": clock() - start, "capped": capped,
            "samples_ms": samples}, model, first_output
