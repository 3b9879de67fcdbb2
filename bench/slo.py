"""Scaling on the SLO in the real closed loop (docs/demo.md, "Scaling on the SLO").

    python -m bench.slo [--out DIR] [--only NAME ...]

Runs the demo's step (30 requests/s, 200 from 30 s to 95 s, 180 s in all) once under each
``apiservice/examples/demo/hpa-slo-*.yaml`` manifest, one after another, each with its own real
adapter, model-server processes, balancer and emulated controller
(``localcluster.demo.run_scenario``, what ``inference-adapter demo`` runs), and prints one row
per HPA: replica-seconds, the share of requests over the 500 ms SLO or not served (the load
generator's count), scale events, flaps (a scale-down followed by a scale-up within the HPA's
30 s scale-down stabilization window) and the most replicas. About 3.5 minutes per HPA; the
simulator runs the same comparison in seconds (``inference-adapter simulate``, same manifests).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from localcluster.demo import DEMO_DIR, DURATION_SECONDS, TRACE, run_scenario, summarize
from simulator.summary import count_flaps, scale_events

MANIFESTS = {
    path.stem.removeprefix("hpa-slo-"): path for path in sorted(DEMO_DIR.glob("hpa-slo-*.yaml"))
}
FLAP_WINDOW_SECONDS = 30.0
"""The manifests' ``behavior.scaleDown.stabilizationWindowSeconds``."""


async def _compare(names: list[str], out: Path) -> None:
    rows = []
    for name in names:
        result = await run_scenario(MANIFESTS[name], out / name, TRACE, DURATION_SECONDS)
        summary = summarize(result, TRACE)
        events = scale_events(result.syncs)  # type: ignore[arg-type] - the same three fields
        rows.append(
            f"| {name} | {summary.replica_seconds:.0f} | {summary.slo_violation_share:.1%}"
            f" | {len(events)} | {count_flaps(events, FLAP_WINDOW_SECONDS)}"
            f" | {summary.max_replicas} |"
        )
    print("\n| HPA on | replica-seconds | over SLO or not served | scale events | flaps | max |")
    print("|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.slo", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("slo-out"))
    parser.add_argument("--only", nargs="+", choices=sorted(MANIFESTS), default=sorted(MANIFESTS))
    args = parser.parse_args()
    asyncio.run(_compare(args.only, args.out))


if __name__ == "__main__":
    main()
