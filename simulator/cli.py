"""``inference-adapter simulate``: replay a trace against HPA manifests in virtual time.

Flags follow the tools they stand for: the load generator's ``--profile``/``--rate``, the
model server's pod flags (``--service-time``, ``--max-concurrency``, ``--max-queue``, the
batching flags, ``--drain-timeout``), the adapter's ``--push-interval``, ``--window`` and
``--max-age``, and kube-controller-manager's HPA flags without their
``--horizontal-pod-autoscaler-`` prefix, with its defaults. Bad input of any kind is one line on
stderr naming it (and, for a manifest, its line and field) and exit status 2: no usage dump, no
traceback. See docs/simulate.md.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from adapter import durations
from adapter.config import StoreConfig
from localcluster import hpa
from model_server import profiles
from model_server.service_time import parse_distribution
from simulator import inputs
from simulator.pods import PodModel

if TYPE_CHECKING:
    from simulator.run import SimulationConfig

MAX_DURATION_SECONDS = 31 * 24 * 3600.0
"""Per-second counts are kept for the whole run: a month is the longest it takes."""

PROG = "inference-adapter simulate"
DESCRIPTION = (
    "Replay a load profile against one or more HPA manifests in virtual time: the pods as"
    " queues, the adapter's own store and provider, the HPA's own algorithm. Writes a timeline"
    " per manifest and a summary; an hour of traffic takes seconds."
)
EPILOG = (
    profiles.PROFILE_HELP
    + """

--sweep KEY=V1,V2,...: one run per value; KEY is a metric the manifests scale on (its target),
a manifest field (spec.maxReplicas, spec.behavior.scaleDown.stabilizationWindowSeconds) or an
option without dashes (max-concurrency, startup-delay, tolerance, ...).

example: inference-adapter simulate --hpa apiservice/examples/hpa-tuned.yaml \\
  --profile sine:150,1h --rate 200 --duration 2h --service-time lognormal:50ms,0.4 --out sim"""
)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump): ``prog: error: message``, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, not {text!r}")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, not {text!r}")
    return value


def _positive_duration(text: str) -> float:
    value = durations.duration_arg(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be longer than 0, not {text!r}")
    return value


def _distribution(text: str) -> object:
    try:
        return parse_distribution(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _startup_delay(text: str) -> object:
    try:
        return inputs.parse_startup_delay(text)
    except inputs.InvalidInput as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    """The ``simulate`` flags; ``simulate_options`` in the parsed namespace maps each option a
    sweep may vary (flag without dashes) to its argparse action."""
    parser = _Parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options: dict[str, argparse.Action] = {}
    parser.set_defaults(simulate_options=options)
    parser.add_argument(
        "--hpa",
        type=Path,
        action="append",
        required=True,
        metavar="FILE",
        help="an autoscaling/v2 HPA manifest (repeat to compare several on the same traffic)",
    )
    load = parser.add_argument_group("load (as model-server loadgen)")
    load.add_argument("--profile", default="constant", help="rate over time (default constant)")
    load.add_argument(
        "--rate", type=_number, default=10.0, help="requests per second, the profile's base"
    )
    load.add_argument(
        "--duration", type=_positive_duration, required=True, help="simulated time, e.g. 1h"
    )
    load.add_argument("--seed", type=int, default=1, help="seed of arrivals and draws (1)")
    load.add_argument(
        "--slo", type=_positive_duration, default=0.5, help="latency objective (500ms)"
    )
    pods = parser.add_argument_group("pods (as model-server)")
    defaults = PodModel()
    pods.add_argument(
        "--service-time",
        type=_distribution,
        default=defaults.service_time,
        help="constant:20ms, exponential:20ms (mean) or lognormal:20ms,0.5 (median, sigma);"
        " default lognormal:20ms,0.5",
    )
    pods.add_argument("--max-concurrency", type=_positive_int, default=defaults.max_concurrency)
    pods.add_argument("--max-queue", type=_count, default=defaults.max_queue)
    pods.add_argument("--max-batch-size", type=_positive_int, default=defaults.max_batch_size)
    pods.add_argument("--batch-timeout-ms", type=_number, default=0.0)
    pods.add_argument("--batch-growth", type=_number, default=defaults.batch_growth)
    pods.add_argument(
        "--drain-timeout",
        type=durations.duration_arg,
        default=defaults.drain_timeout_seconds,
        help="a deleted pod is cut this long after deletion (30s)",
    )
    pods.add_argument(
        "--startup-delay",
        type=_startup_delay,
        default=defaults.startup_delay,
        help="pod created to ready: scheduling, image pull, model load; a duration (20s) or a"
        " distribution as --service-time (lognormal:20s,0.3); default 20s",
    )
    pods.add_argument(
        "--initial-replicas",
        type=_positive_int,
        help="replicas running at the start (default: the HPA's minReplicas)",
    )
    adapter = parser.add_argument_group("adapter")
    store = StoreConfig()
    adapter.add_argument("--push-interval", type=_positive_duration, default=1.0)
    adapter.add_argument("--window", type=_positive_duration, default=store.window_seconds)
    adapter.add_argument("--max-age", type=_positive_duration, default=store.max_age_seconds)
    controller = parser.add_argument_group(
        "HPA controller (kube-controller-manager --horizontal-pod-autoscaler-*)"
    )
    upstream = hpa.ControllerConfig()
    controller.add_argument("--sync-period", type=_positive_duration, default=15.0)
    controller.add_argument("--tolerance", type=_number, default=upstream.tolerance)
    controller.add_argument(
        "--cpu-initialization-period",
        type=durations.duration_arg,
        default=upstream.cpu_initialization_period_seconds,
    )
    controller.add_argument(
        "--initial-readiness-delay",
        type=durations.duration_arg,
        default=upstream.delay_of_initial_readiness_status_seconds,
    )
    controller.add_argument(
        "--downscale-stabilization",
        type=durations.duration_arg,
        default=float(upstream.downscale_stabilization_window_seconds),
    )
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, default=Path("simulate-out"), help="(simulate-out)")
    output.add_argument("--sweep", metavar="KEY=V1,V2,...", help="one run per value (below)")
    for group in (load, pods, adapter, controller):
        for action in group._group_actions:  # what a sweep may vary, by flag name
            options[action.option_strings[0].removeprefix("--")] = action
    return parser


def config_from_args(args: argparse.Namespace) -> SimulationConfig:
    """The run's configuration; ``InvalidInput`` for a bad profile or pod model."""
    from simulator.run import SimulationConfig

    try:
        profile = profiles.parse_profile(
            args.profile,
            rate=args.rate,
            duration_seconds=args.duration,
            read_text=lambda path: Path(path).read_text(encoding="utf-8"),
        )
    except profiles.InvalidProfile as error:
        raise inputs.InvalidInput(f"--profile: {error}") from None
    pod = PodModel(
        service_time=args.service_time,
        max_concurrency=args.max_concurrency,
        max_queue=args.max_queue,
        max_batch_size=args.max_batch_size,
        batch_timeout_seconds=args.batch_timeout_ms / 1000,
        batch_growth=args.batch_growth,
        startup_delay=args.startup_delay,
        drain_timeout_seconds=args.drain_timeout,
    )
    problems = pod.problems()
    if problems:
        raise inputs.InvalidInput(problems[0])
    return SimulationConfig(
        profile=profile,
        duration_seconds=args.duration,
        pod=pod,
        store=StoreConfig(window_seconds=args.window, max_age_seconds=args.max_age),
        push_interval_seconds=args.push_interval,
        controller=hpa.ControllerConfig(
            tolerance=args.tolerance,
            cpu_initialization_period_seconds=args.cpu_initialization_period,
            delay_of_initial_readiness_status_seconds=args.initial_readiness_delay,
            downscale_stabilization_window_seconds=round(args.downscale_stabilization),
            sync_period_seconds=args.sync_period,
        ),
        initial_replicas=args.initial_replicas,
        slo_seconds=args.slo,
        seed=args.seed,
    )


@dataclass(frozen=True)
class _Planned:
    """One run to make: a manifest, the swept value if any, and where its files go."""

    stem: str
    value: str | None
    autoscaler: hpa.HorizontalPodAutoscaler
    config: SimulationConfig
    out_dir: Path


def _with_option(args: argparse.Namespace, key: str, value: str) -> argparse.Namespace:
    """``args`` with the swept option ``--key`` set to ``value`` (converted as the flag is)."""
    action = args.simulate_options[key]
    try:
        converted = action.type(value) if action.type is not None else value
    except (argparse.ArgumentTypeError, ValueError) as error:
        raise inputs.InvalidInput(f"--sweep: --{key} {value!r}: {error}") from None
    changed = copy.copy(args)
    setattr(changed, action.dest, converted)
    return changed


def plan(args: argparse.Namespace) -> list[_Planned]:
    """Every run the flags ask for, checked before any starts (``InvalidInput`` otherwise)."""
    if args.duration > MAX_DURATION_SECONDS:
        raise inputs.InvalidInput("--duration: at most 31 days (744h)")
    stems = [path.stem for path in args.hpa]
    if len(set(stems)) != len(stems):
        raise inputs.InvalidInput(
            f"--hpa: two manifests named {max(stems, key=stems.count)!r} would share a folder"
        )
    sweep = inputs.parse_sweep(args.sweep, list(args.simulate_options)) if args.sweep else None
    planned = []
    for value in sweep.values if sweep else (None,):
        assert sweep is None or value is not None
        swept = _with_option(args, sweep.key, value) if sweep and sweep.is_option else args
        config = config_from_args(swept)
        for path in args.hpa:
            edit = sweep.edit(value) if sweep and value is not None else None
            out_dir = args.out / path.stem
            if sweep:
                out_dir /= f"{sweep.key}={value}".replace("/", "_")
            planned.append(
                _Planned(path.stem, value, inputs.load_manifest(path, edit), config, out_dir)
            )
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise inputs.InvalidInput(f"--out {args.out}: {error.strerror}") from None
    return planned


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str]) -> int:
    """Run ``inference-adapter simulate ARGV``; the exit status."""
    args = build_parser().parse_args(argv)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return _fail("the plots need matplotlib: pip install -e '.[demo]'")
    try:
        planned = plan(args)
    except inputs.InvalidInput as error:
        return _fail(str(error))
    from simulator import outputs, run, summary

    results = []
    for one in planned:
        started = time.perf_counter()
        result = run.simulate(one.autoscaler, one.config)
        labelled = outputs.Labelled(one.stem, one.value, result, summary.summarize(result))
        print(
            f"simulated {labelled.name}: {one.config.duration_seconds:g} s of traffic,"
            f" {result.requests:,} requests, in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        one.out_dir.mkdir(parents=True, exist_ok=True)
        outputs.write_timeline(one.out_dir / "timeline.csv", result)
        outputs.plot_timeline(one.out_dir / "timeline.png", labelled)
        results.append(labelled)
    sweep_key = inputs.parse_sweep(args.sweep, []).key if args.sweep else None
    written = [args.out / "summary.csv"]
    outputs.write_summary(written[0], results, sweep_key)
    if len(args.hpa) > 1 and sweep_key is None:
        written.append(args.out / "compare.png")
        outputs.plot_compare(written[-1], results)
    if sweep_key is not None:
        written.append(args.out / "pareto.png")
        outputs.plot_pareto(written[-1], results, sweep_key)
    print(outputs.table(results, sweep_key))
    print(f"wrote {', '.join(map(str, written))} and a timeline per run in {args.out}/")
    return 0
