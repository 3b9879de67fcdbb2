"""The load traces of the SLO comparison (docs/demo.md, "Scaling on the SLO"), made once.

    python -m bench.traces      # rewrites apiservice/examples/demo/load-{sine,day,day-12m}.csv

- ``load-demo.csv`` (not made here): the demo's step, 30 to 200 requests/s for 65 s.
- ``load-sine.csv``: 30 to 210 requests/s and back every four minutes, from the trough, for
  eight minutes, in steps of one second.
- ``load-day.csv``: a recorded-looking day, one rate per minute: quiet at night, a morning ramp,
  a lunch dip, an afternoon peak of about 240 requests/s, an evening shoulder; minute-to-minute
  noise (a log-normal AR(1), as traffic drifts rather than jumps), and two surges, a burst at
  11:00 (twice the traffic for half an hour) and a batch job at 16:30 (1.6 times for an hour).
- ``load-day-12m.csv``: the same day pressed into twelve minutes for the real closed loop (an
  hour is 30 s), as the mean of each ten minutes (5 s).

Seeded: the files are the same on every machine.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

DEMO = Path(__file__).resolve().parent.parent / "apiservice" / "examples" / "demo"
SEED = 16
MINUTES_PER_DAY = 24 * 60
DAY_COMPRESSION = 120
"""The pressed day runs this many times faster: 24 h in 12 min."""
DAY_BLOCK_MINUTES = 10
"""The pressed day holds one rate per this many minutes of the day."""


def sine_rates(seconds: int = 480, mean: float = 120.0, swing: float = 90.0) -> list[float]:
    period = 240.0
    return [mean - swing * math.cos(2 * math.pi * (t + 0.5) / period) for t in range(seconds)]


def day_rates(seed: int = SEED) -> np.ndarray:
    """Requests per second for each minute of the day."""
    rng = np.random.default_rng(seed)
    hours = np.arange(MINUTES_PER_DAY) / 60.0

    def bump(centre: float, width: float) -> np.ndarray:
        return np.exp(-(((hours - centre) / width) ** 2))

    shape = (
        0.05
        + 0.85 * bump(10.5, 1.8)
        + 1.0 * bump(15.5, 2.2)
        + 0.35 * bump(20.5, 1.5)
        - 0.25 * bump(12.75, 0.5)
    )
    noise = np.empty(MINUTES_PER_DAY)
    level = 0.0
    for minute in range(MINUTES_PER_DAY):
        level = 0.9 * level + rng.normal(0.0, 0.06)
        noise[minute] = level
    surges = np.ones(MINUTES_PER_DAY)
    surges[11 * 60 : 11 * 60 + 30] = 2.0
    surges[16 * 60 + 30 : 17 * 60 + 30] = 1.6
    return np.maximum(1.0, 20.0 + 200.0 * shape * np.exp(noise) * surges)


def write(path: Path, comment: str, rows: list[tuple[float, float]]) -> None:
    lines = [f"# {line}" for line in comment.splitlines()]
    lines += ["time_seconds,rate", *(f"{t:g},{r:.1f}" for t, r in rows)]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    write(
        DEMO / "load-sine.csv",
        "120 +- 90 requests/s from the trough, period 4 min, 8 min (bench/traces.py): docs/demo.md",
        list(enumerate(sine_rates())),
    )
    day = day_rates()
    write(
        DEMO / "load-day.csv",
        "A recorded-looking day, a rate per minute (bench/traces.py): docs/demo.md",
        [(minute * 60.0, rate) for minute, rate in enumerate(day)],
    )
    blocks = day.reshape(-1, DAY_BLOCK_MINUTES).mean(axis=1)
    step = DAY_BLOCK_MINUTES * 60.0 / DAY_COMPRESSION
    write(
        DEMO / "load-day-12m.csv",
        "load-day.csv pressed into 12 minutes (an hour in 30 s), the mean of each 10 minutes"
        " (bench/traces.py): docs/demo.md",
        [(index * step, rate) for index, rate in enumerate(blocks)],
    )


if __name__ == "__main__":
    main()
