"""``python -m bench``: every benchmark with its baseline, a JSON result file and a Markdown table.

    python -m bench                  # full run (about 20 minutes)
    python -m bench --quick          # smoke run (a few minutes; no 10,000-pod query)
    python -m bench --only memory    # one group (repeatable): see GROUPS
    python -m bench --profile bench/profiles   # also CPU profiles of the hot paths

Each figure is the median of ``--runs`` runs that alternate ours and the baseline; every ratio is
against a baseline measured in the same run on the same machine (ours/baseline unless the entry
says otherwise, e.g. baseline/ours for "our throughput as a fraction of the baseline's").
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from bench import (
    accuracy,
    connections,
    freshness,
    machine,
    memory,
    overload,
    profiles,
    push,
    query,
    simulate,
)
from bench import model_server as model_server_bench
from bench import prometheus as prometheus_bench

GROUPS = (
    "push",
    "query",
    "overload",
    "model-server",
    "memory",
    "freshness",
    "accuracy",
    "prometheus",
    "simulate",
)


def _number(value: Any, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "requests/s":
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _met(value: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "-"}[value]


def markdown(result: dict[str, Any]) -> str:
    """The results as a Markdown table, with the machine above it."""
    m = result["machine"]
    lines = [
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']},"
        f" aiohttp {m['aiohttp']}, numpy {m['numpy']}; load average at start"
        f" {m['load_average_at_start']}, at end {m.get('load_average_at_end')}.",
        f"Code: {m.get('code', {}).get('commit')}, uncommitted:"
        f" {', '.join(m.get('code', {}).get('uncommitted', [])) or 'none'}.",
        f"Mode: {result['mode']}, {result['runs']} runs per figure, alternating ours/baseline.",
        "",
        "| figure | unit | ours (median) | ours p90 | ours CPU (median) | baseline (median)"
        " | ratio | ratio is | target | met |",
        "|---|---|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for entry in result["results"]:
        unit = entry["unit"]
        lines.append(
            f"| {entry['name']} | {unit} | {_number(entry['ours'], unit)}"
            f" | {_number(entry.get('ours_p90'), unit)} | {_number(entry.get('ours_cpu'), unit)}"
            f" | {_number(entry['baseline'], unit)} | {_number(entry['ratio'], 'ratio')}"
            f" | {entry.get('ratio_is', 'ours/baseline') if entry['ratio'] is not None else '-'}"
            f" | {entry['target']} | {_met(entry['met'])} |"
        )
    for entry in result["results"]:  # tables and notes of single entries
        if entry.get("markdown"):
            lines += ["", f"{entry['name']}:", "", *entry["markdown"]]
    push_entry = next((e for e in result["results"] if e["name"] == "push throughput"), None)
    if push_entry is not None:
        cpu = push_entry["server_cpu_us_per_request"]
        lines += [
            "",
            f"Push server CPU per request: ours {cpu['ours']:.0f} us, baseline"
            f" {cpu['baseline']:.0f} us (ratio {cpu['ratio']:.2f}); servers pinned to CPUs"
            f" {push_entry['settings']['server_cpus']}, load to"
            f" {push_entry['settings']['load_cpus']}.",
        ]
    cpu_entry = next(
        (e for e in result["results"] if e["name"] == "model server CPU per request"), None
    )
    if cpu_entry is not None:
        lines += [
            "",
            f"Model server overhead: {cpu_entry['overhead_us_per_request']:.0f} us CPU per"
            f" request above the bare aiohttp handler ({cpu_entry['settings']['body_bytes']}-byte"
            f" requests, {cpu_entry['settings']['answer_bytes']}-byte answers,"
            f" {cpu_entry['settings']['concurrency']} connections).",
        ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--runs", type=int, help="runs per figure (default 5; quick 2)")
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"))
    parser.add_argument("--only", choices=GROUPS, action="append", help="repeatable")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and load")
    parser.add_argument("--profile", type=Path, help="also write CPU profiles to this folder")
    parser.add_argument(
        "--push-seconds", type=float, help="measured seconds per push run (default 5; quick 1)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    runs = args.runs or (2 if args.quick else 5)
    if not 1 <= runs <= 50:
        raise SystemExit("--runs must be between 1 and 50")
    groups = args.only or list(GROUPS)
    pin = not args.no_pin
    result: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "mode": "quick" if args.quick else "full",
        "runs": runs,
        "machine": machine.describe(),
        "results": [],
    }
    began = time.monotonic()

    def log(text: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {text}", file=sys.stderr, flush=True)

    if "push" in groups:
        log("push throughput: our adapter process vs a bare aiohttp process")
        settings = push.PushSettings(
            runs=runs,
            duration_seconds=args.push_seconds or (1.0 if args.quick else 5.0),
            warmup_seconds=0.5 if args.quick else 1.0,
            pin=pin,
        )
        result["results"].append(push.run(settings, log))
        log("push pipeline in process: decode_report + Store.apply vs msgspec.json.decode")
        result["results"].append(push.pipeline(runs))
    if "query" in groups:
        log("selector query: 1,000 pods in process; 10 to 10,000 pods and a Deployment over HTTPS")
        settings = query.QuerySettings(
            runs=runs,
            fill_slices=5 if args.quick else 30,
            cold_iterations=2 if args.quick else 10,
            warm_iterations=3 if args.quick else 10,
            http_rounds=1 if args.quick else 4,
            http_warm=5 if args.quick else 25,
            http_min_warm=2 if args.quick else 3,
            http_sizes=(10, 100, 1000) if args.quick else (10, 100, 1000, 10000),
            pin=pin,
        )
        result["results"] += query.run(settings, log)
    if "overload" in groups:
        log("overload: HPA queries while pods push at 70 % and at 2x the push capacity")
        settings = overload.OverloadSettings(
            unloaded_seconds=5.0 if args.quick else 10.0,
            mixed_seconds=10.0 if args.quick else 20.0,
            storm_seconds=10.0 if args.quick else 30.0,
            pin=pin,
        )
        result["results"].append(overload.run(settings, log))
    if "model-server" in groups:
        log("model server overhead: simulated, 0 ms service time, vs a bare aiohttp process")
        settings = model_server_bench.ModelServerSettings(
            runs=runs,
            duration_seconds=args.push_seconds or (1.0 if args.quick else 5.0),
            warmup_seconds=0.5 if args.quick else 1.0,
            pin=pin,
        )
        result["results"] += model_server_bench.run(settings, log)
    if "memory" in groups:
        log("memory per tracked pod: a store filled in a fresh process, RSS growth / pods")
        settings = memory.MemorySettings(
            runs=min(runs, 3),
            pods=2_000 if args.quick else 10_000,
            cpus=query.cpu_plan(pin)[0],
        )
        result["results"].append(memory.run(settings, log))
        log("memory per open connection: 1,000 idle TLS connections, uvloop and asyncio")
        result["results"].append(
            connections.run(
                connections.ConnectionSettings(connections=300 if args.quick else 1000), log
            )
        )
    if "freshness" in groups:
        log("freshness: latency step in a pod to the changed p99 through the API")
        settings = freshness.FreshnessSettings(
            pods=4 if args.quick else 10,
            steady_seconds=6.0 if args.quick else 32.0,
            step_spread=2.0 if args.quick else 3.0,
            pin=pin,
        )
        result["results"].append(freshness.run(settings, log))
    if "accuracy" in groups:
        log("quantile accuracy: sketch against numpy.quantile on the raw samples")
        settings = accuracy.AccuracySettings(runs=max(runs, 5), samples=100_000)
        result["results"].append(accuracy.run(settings, log))
    if "prometheus" in groups:
        log("prometheus: push vs Prometheus (1 s, 15 s scrapes) on one step; query time at scale")
        settings = prometheus_bench.PrometheusSettings(
            runs=1 if args.quick else 3,
            pods=4 if args.quick else 10,
            query_sizes=(1_000,) if args.quick else (1_000, 10_000),
            query_repeats=3 if args.quick else 5,
        )
        result["results"] += prometheus_bench.run(settings, log)
    if "simulate" in groups:
        log("simulate: an hour at 200 requests/s, up to 50 replicas, vs a bare event loop")
        settings = simulate.SimulateSettings(
            runs=runs,
            hours=(1.0, 4.0) if args.quick else (1.0, 24.0),
            cpu=min(query.cpu_plan(pin)[0] or {-1}) if pin else None,
        )
        result["results"].append(simulate.run(settings, log))
    if args.profile is not None:
        log(f"CPU profiles into {args.profile}")
        result["profiles"] = profiles.run(args.profile)
    result["machine"]["load_average_at_end"] = machine.load_average()
    result["seconds"] = round(time.monotonic() - began, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    print(f"\nwrote {args.out} in {result['seconds']}s")


if __name__ == "__main__":
    main()
