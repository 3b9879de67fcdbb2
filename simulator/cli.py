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
import contextlib
import copy
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from adapter import arguments, durations
from adapter.config import StoreConfig
from localcluster import controller, hpa
from model_server import profiles
from model_server.service_time import distribution_arg
from simulator import inputs
from simulator.pods import PodModel

if TYPE_CHECKING:
    from simulator.run import SimulationConfig

MAX_DURATION_SECONDS = 31 * 24 * 3600.0
"""Per-second counts are kept for the whole run: a month is the longest it takes."""
MAX_REQUESTS = 1e9
"""The most requests (peak rate x duration) a run may ask for: about four hours of CPU at some
15 us each (a month at 370 requests/s); a mistyped rate is refused rather than run for days."""

PROG = "inference-adapter simulate"
DESCRIPTION = """\
Replay a load profile against one or more HPA manifests in virtual time: the pods as
queues, the adapter's own store and provider, the HPA's own algorithm. Writes a timeline
per manifest and a summary; an hour of traffic takes seconds."""
EPILOG = (
    profiles.PROFILE_HELP
    + """

--sweep KEY=V1,V2,...: one run per value; KEY is a metric the manifests scale on (its target),
a manifest field (spec.maxReplicas, spec.behavior.scaleDown.stabilizationWindowSeconds) or an
option without dashes (max-concurrency, startup-delay, tolerance, ...).

example: inference-adapter simulate --hpa apiservice/examples/hpa-tuned.yaml \\
  --profile sine:150,1h --rate 200 --duration 2h --service-time lognormal:50ms,0.4 --out sim"""
)


def _startup_delay(text: str) -> object:
    try:
        return inputs.parse_startup_delay(text)
    except inputs.InvalidInput as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    """The ``simulate`` flags; ``simulate_options`` in the parsed namespace maps each option a
    sweep may vary (flag without dashes) to its argparse action."""
    parser = arguments.OneLineParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--hpa",
        type=Path,
        action="append",
        required=True,
        metavar="FILE",
        help="an autoscaling/v2 HPA manifest; repeat to compare several on the same traffic",
    )
    pod, store, upstream = PodModel(), StoreConfig(), hpa.ControllerConfig()
    seconds = durations.format_duration
    load = parser.add_argument_group("load, as model-server loadgen")
    pods = parser.add_argument_group("pods, as model-server")
    adapter = parser.add_argument_group("adapter")
    controller = parser.add_argument_group(
        "HPA controller: kube-controller-manager's --horizontal-pod-autoscaler-* flags"
    )
    duration, number = arguments.positive_duration, arguments.non_negative_number
    for group, flag, kind, default, shown, what in (
        (load, "--profile", str, "constant", "constant", "rate over time"),
        (load, "--rate", number, 10.0, "10", "requests per second (the profile's base)"),
        (load, "--seed", int, 1, "1", "seed of arrivals and service times"),
        (load, "--slo", duration, 0.5, "500ms", "latency objective"),
        (pods, "--service-time", distribution_arg, pod.service_time, str(pod.service_time),
         "constant:20ms, exponential:20ms (mean) or lognormal:20ms,0.5 (median, sigma)"),
        (pods, "--max-concurrency", arguments.positive_int, pod.max_concurrency,
         str(pod.max_concurrency), "worker slots"),
        (pods, "--max-queue", arguments.count, pod.max_queue, str(pod.max_queue),
         "waiting requests beyond which a pod sheds"),
        (pods, "--max-batch-size", arguments.positive_int, pod.max_batch_size, "1",
         "requests per batch"),
        (pods, "--batch-timeout-ms", number, 0.0, "0", "how long a batch may wait to fill"),
        (pods, "--batch-growth", number, pod.batch_growth, "0",
         "a batch of n holds its slot 1 + growth*(n-1) draws"),
        (pods, "--drain-timeout", durations.duration_arg, pod.drain_timeout_seconds,
         seconds(pod.drain_timeout_seconds), "a deleted pod is cut this long after deletion"),
        (pods, "--startup-delay", _startup_delay, pod.startup_delay, "20s",
         "pod created to ready (scheduling, image pull, model load): a duration, or a"
         " distribution as --service-time such as lognormal:20s,0.3"),
        (adapter, "--push-interval", duration, 1.0, "1s", "each pod pushes this often"),
        (adapter, "--window", duration, store.window_seconds, seconds(store.window_seconds),
         "latency quantiles and rates cover this window"),
        (adapter, "--max-age", duration, store.max_age_seconds, seconds(store.max_age_seconds),
         "pods silent for longer are not served"),
        (controller, "--sync-period", duration, 15.0, "15s", "how often the HPA is evaluated"),
        (controller, "--tolerance", number, upstream.tolerance, f"{upstream.tolerance:g}",
         "ratios within 1 +- tolerance keep the size"),
        (controller, "--cpu-initialization-period", durations.duration_arg,
         upstream.cpu_initialization_period_seconds,
         seconds(upstream.cpu_initialization_period_seconds), "CPU readiness rule"),
        (controller, "--initial-readiness-delay", durations.duration_arg,
         upstream.delay_of_initial_readiness_status_seconds,
         seconds(upstream.delay_of_initial_readiness_status_seconds), "CPU readiness rule"),
        (controller, "--downscale-stabilization", durations.duration_arg,
         float(upstream.downscale_stabilization_window_seconds),
         seconds(upstream.downscale_stabilization_window_seconds),
         "the scale-down window when a manifest sets none"),
    ):  # fmt: skip
        group.add_argument(flag, type=kind, default=default, help=f"{what} ({shown})")
    load.add_argument(
        "--duration", type=duration, required=True, help="simulated time, e.g. 30m or 24h"
    )
    pods.add_argument(
        "--initial-replicas",
        type=arguments.positive_int,
        help="replicas running at the start (the HPA's minReplicas)",
    )
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, default=Path("simulate-out"), help="(simulate-out)")
    output.add_argument("--sweep", metavar="KEY=V1,V2,...", help="one run per value (below)")
    options = {  # what a sweep may vary, by flag name
        action.option_strings[0].removeprefix("--"): action
        for group in (load, pods, adapter, controller)
        for action in group._group_actions
    }
    parser.set_defaults(simulate_options=options)
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
    requests = profile.max_rate * args.duration
    if requests > MAX_REQUESTS:
        raise inputs.InvalidInput(
            f"--rate, --profile: {requests:.3g} requests (peak rate x duration), more than the"
            f" {MAX_REQUESTS:.0e} a run may take (some 15 us of CPU each)"
        )
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
class Planned:
    """One run to make: a manifest, the swept value if any, and where its files go."""

    stem: str
    value: str | None
    autoscaler: hpa.HorizontalPodAutoscaler
    config: SimulationConfig
    out_dir: Path


@dataclass(frozen=True)
class Plan:
    """Every run the flags ask for, and the swept key (None without ``--sweep``)."""

    runs: list[Planned]
    sweep_key: str | None


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


def _check_sweep_changes(runs: list[Planned], sweep: str) -> None:
    """A manifest sweep must change what the HPA reads: a misspelled field (the manifests'
    reader ignores fields it does not know) or values that mean the same would give identical
    runs that look like a finding."""
    for stem in dict.fromkeys(run.stem for run in runs):
        variants = [run.autoscaler for run in runs if run.stem == stem]
        if len(variants) > 1 and all(variant == variants[0] for variant in variants):
            raise inputs.InvalidInput(
                f"--sweep {sweep!r}: the runs of {stem} would be the same (a field the HPA"
                " does not read, or values that mean the same)"
            )


def plan(args: argparse.Namespace) -> Plan:
    """Every run the flags ask for, checked before any starts (``InvalidInput`` otherwise)."""
    if args.duration > MAX_DURATION_SECONDS:
        raise inputs.InvalidInput("--duration: at most 31 days (744h)")
    stems = [path.stem for path in args.hpa]
    if len(set(stems)) != len(stems):
        raise inputs.InvalidInput(
            f"--hpa: two manifests named {max(stems, key=stems.count)!r} would share a folder"
        )
    if args.sweep is None:
        config = config_from_args(args)
        runs = [
            Planned(path.stem, None, inputs.load_manifest(path), config, args.out / path.stem)
            for path in args.hpa
        ]
    else:
        sweep = inputs.parse_sweep(args.sweep, list(args.simulate_options))
        runs = []
        for value in sweep.values:
            config = config_from_args(
                _with_option(args, sweep.key, value) if sweep.is_option else args
            )
            folder = f"{sweep.key}={value}".replace("/", "_")
            runs += [
                Planned(
                    path.stem,
                    value,
                    inputs.load_manifest(path, sweep.edit(value)),
                    config,
                    args.out / path.stem / folder,
                )
                for path in args.hpa
            ]
        if not sweep.is_option:
            _check_sweep_changes(runs, args.sweep)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise inputs.InvalidInput(f"--out {args.out}: {error.strerror}") from None
    return Plan(runs, None if args.sweep is None else sweep.key)


@contextlib.contextmanager
def _controller_quiet() -> Iterator[None]:
    """The HPA controller logs each sync's events as the closed loop runs; here they are each
    timeline's ``decision`` column, and a day of failing syncs would be thousands of lines."""
    level = controller.logger.level
    controller.logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        controller.logger.setLevel(level)


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
    for one in planned.runs:
        started = time.perf_counter()
        with _controller_quiet():
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
    sweep_key = planned.sweep_key
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
