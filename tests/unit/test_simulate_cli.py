"""``inference-adapter simulate``: what it writes, and bad input as one line on stderr with exit
status 2 (no usage text, no traceback), naming the file, line and field of a bad manifest."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from adapter import __main__ as cli
from simulator import inputs
from tests.hpa_manifests import CONCURRENCY_3, P99_500MS, hpa_yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "apiservice" / "examples"
DEMO_HPA = EXAMPLES / "demo" / "hpa-demo.yaml"

HPA = hpa_yaml(1, 4, CONCURRENCY_3 + P99_500MS)


def simulate(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command in process; (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exited:
        cli.main(["simulate", *argv])
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def manifest(tmp_path: Path, text: str = HPA, name: str = "hpa.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_several_manifests_on_one_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = manifest(tmp_path, HPA.replace('averageValue: "3"', 'averageValue: "1"'), "eager.yaml")
    out = tmp_path / "out"
    code, stdout, stderr = simulate(
        capsys,
        *("--hpa", str(manifest(tmp_path)), "--hpa", str(other)),
        *("--profile", "step:20s,150", "--rate", "20", "--duration", "60s"),
        *("--service-time", "lognormal:50ms,0.4", "--startup-delay", "2s"),
        *("--sync-period", "5s", "--out", str(out)),
    )
    assert code == 0, stderr
    header, *rows = stdout.splitlines()[:3]
    assert header.split()[:2] == ["HPA", "replica-seconds"]
    assert [row.split()[0] for row in rows] == ["hpa", "eager"]
    with (out / "summary.csv").open() as handle:
        summary = list(csv.DictReader(handle))
    assert [s["manifest"] for s in summary] == ["hpa", "eager"]
    assert float(summary[1]["replica_seconds"]) > float(summary[0]["replica_seconds"])
    with (out / "hpa" / "timeline.csv").open() as handle:
        timeline = list(csv.DictReader(handle))
    assert len(timeline) == 13  # a sync every 5 s from 0 to 60
    assert list(timeline[0])[:6] == [
        "time_seconds",
        "offered_rps",
        "desired_replicas",
        "ready_replicas",
        "hpa_inference_concurrency",
        "hpa_inference_latency_p99_seconds",
    ]
    assert [row["offered_rps"] for row in timeline[3:6]] == ["20", "150", "150"]
    assert sum(int(row["requests"]) for row in timeline) > 5000
    for picture in (out / "hpa" / "timeline.png", out / "eager" / "timeline.png"):
        assert picture.read_bytes().startswith(b"\x89PNG")
    assert (out / "compare.png").read_bytes().startswith(b"\x89PNG")


def test_a_sweep_runs_once_per_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = simulate(
        capsys,
        *("--hpa", str(manifest(tmp_path)), "--rate", "60", "--duration", "40s"),
        *("--service-time", "lognormal:50ms,0.4", "--startup-delay", "2s", "--out", str(out)),
        *("--sweep", "inference_concurrency=1,3"),
    )
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0].split()[:3] == ["HPA", "inference_concurrency", "replica-seconds"]
    assert [line.split()[:2] for line in lines[1:3]] == [["hpa", "1"], ["hpa", "3"]]
    with (out / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["inference_concurrency"] for r in rows] == ["1", "3"]
    # a lower concurrency target keeps more replicas
    assert float(rows[0]["replica_seconds"]) > float(rows[1]["replica_seconds"])
    assert (out / "hpa" / "inference_concurrency=1" / "timeline.csv").exists()
    assert (out / "pareto.png").read_bytes().startswith(b"\x89PNG")


CPU_METRIC = """\
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: {type: Utilization, averageUtilization: 70}
"""
BAD_HPA = [
    ("kind: Deployment\n", "expected exactly one HorizontalPodAutoscaler, found 0"),
    (HPA.replace("maxReplicas: 4", "maxReplicas: many"), "line 7: spec.maxReplicas has the wrong"),
    (HPA.replace("inference_concurrency", "gpu_memory"), "line 11: spec.metrics[0].pods.metric"),
    (HPA.replace('averageValue: "3"', 'averageValue: "0"'), "line 12: spec.metrics[0].pods.tar"),
    (
        HPA.replace("kind: Deployment, name: model}\n        metric", "kind: Service, name: x}\n"
                    "        metric"),
        "line 15: spec.metrics[1].object.describedObject: the simulation answers for Deployment",
    ),
    (
        HPA.split("  metrics:", maxsplit=1)[0] + CPU_METRIC,
        "line 10: spec.metrics[0].resource: cpu is a resource metric",
    ),
    ("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nspec: [\n", "line 4:"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD_HPA)
def test_a_bad_manifest_is_one_line_naming_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = manifest(tmp_path, text)
    code, stdout, stderr = simulate(capsys, "--hpa", str(path), "--duration", "10s")
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and "Traceback" not in stderr and "usage" not in stderr
    assert stderr.startswith(f"inference-adapter simulate: error: {path}: ")
    assert message in stderr


RUN = ["--hpa", "{hpa}", "--duration", "10s"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--duration", "10s"], "the following arguments are required: --hpa"),
        (["--hpa", "{hpa}"], "the following arguments are required: --duration"),
        ([*RUN, "--duration", "ten"], "argument --duration: invalid duration"),
        ([*RUN, "--max-queue", "-1"], "argument --max-queue: must be an integer >= 0, not '-1'"),
        (
            [*RUN, "--max-concurrency", "0"],
            "argument --max-concurrency: must be a positive integer",
        ),
        ([*RUN, "--service-time", "gamma:1s"], "argument --service-time: invalid service time"),
        ([*RUN, "--startup-delay", "soon"], "argument --startup-delay: invalid duration"),
        ([*RUN, "--rate", "-5"], "argument --rate: must be a number >= 0"),
        ([*RUN, "--bogus"], "unrecognized arguments: --bogus"),
        ([*RUN, "--profile", "step:10s"], "--profile: invalid profile 'step:10s': expected step:"),
        ([*RUN, "--profile", "csv:/nonexistent"], "cannot read '/nonexistent'"),
        ([*RUN, "--sweep", "inference_concurrency"], "--sweep 'inference_concurrency': expected"),
        ([*RUN, "--sweep", "colour=1,2"], "'colour' is not a metric the adapter serves"),
        ([*RUN, "--sweep", "max-queue=1,x"], "--sweep: --max-queue 'x': 'x' is not an integer"),
        ([*RUN, "--sweep", "inference_queue_depth=1,2"], "no metric inference_queue_depth in"),
        ([*RUN, "--sweep", "spec.maxReplicas=4,0"], "spec.maxReplicas: must be greater than or"),
        ([*RUN, "--sweep", "spec.maxReplicas=[4,5]"], "--sweep: spec.maxReplicas: '[4' is not"),
        (
            [*RUN, "--sweep", "spec.behavior.scaleDown.stabilisationWindowSeconds=0,300"],
            "--sweep 'spec.behavior.scaleDown.stabilisationWindowSeconds=0,300': the runs",
        ),
        ([*RUN, "--sweep", "spec.=1,2"], "--sweep 'spec.=1,2': the runs of hpa would be the same"),
        ([*RUN, "--sweep", "inference_concurrency=3,3000m"], "the runs of hpa would be the same"),
        ([*RUN, "--hpa", "{hpa}"], "two manifests named 'hpa' would share a folder"),
        ([*RUN, "--duration", "800h"], "--duration: at most 31 days"),
        ([*RUN, "--rate", "1e12"], "--rate, --profile: 1e+13 requests"),
    ],
)
def test_bad_options_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    path = manifest(tmp_path)
    argv = [a.replace("{hpa}", str(path)) for a in argv]
    code, stdout, stderr = simulate(capsys, *argv, "--out", str(tmp_path / "out"))
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and "usage" not in stderr and "Traceback" not in stderr
    assert stderr.startswith("inference-adapter simulate: error: ")
    assert message in stderr


def test_startup_delays_and_sweeps_parse() -> None:
    assert inputs.parse_startup_delay("1m").scale_seconds == 60.0
    assert inputs.parse_startup_delay("lognormal:20s,0.3").sigma == 0.3
    sweep = inputs.parse_sweep("spec.behavior.scaleDown.stabilizationWindowSeconds=0,60", [])
    assert sweep.is_field and sweep.values == ("0", "60")
    document: dict = {"spec": {"maxReplicas": 3}}
    edit = sweep.edit("60")
    assert edit is not None
    edit(document)
    assert document["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 60}}
    option = inputs.parse_sweep("--tolerance=0.05,0.2", ["tolerance"])
    assert option.is_option and option.key == "tolerance" and option.edit("0.05") is None


def test_a_sweep_of_an_option_or_a_field_plans_one_run_per_value(tmp_path: Path) -> None:
    from simulator import cli as simulate_cli

    path = manifest(tmp_path)
    base = ["--hpa", str(path), "--duration", "10s", "--out", str(tmp_path / "out")]
    option = simulate_cli.plan(
        simulate_cli.build_parser().parse_args(
            [*base, "--sweep", "startup-delay=5s,exponential:1m"]
        )
    )
    assert option.sweep_key == "startup-delay"
    assert [r.config.pod.startup_delay.scale_seconds for r in option.runs] == [5.0, 60.0]
    assert [r.out_dir.name for r in option.runs] == [
        "startup-delay=5s",
        "startup-delay=exponential:1m",
    ]
    field = simulate_cli.plan(
        simulate_cli.build_parser().parse_args(
            [
                *base,
                "--hpa",
                str(manifest(tmp_path, HPA, "other.yaml")),
                "--sweep",
                "spec.maxReplicas=2,9",
            ]
        )
    )
    assert [(r.stem, r.autoscaler.spec.max_replicas) for r in field.runs] == [
        ("hpa", 2),
        ("other", 2),
        ("hpa", 9),
        ("other", 9),
    ]
    target = simulate_cli.plan(
        simulate_cli.build_parser().parse_args(
            [*base, "--sweep", "inference_latency_p99_seconds=300m,1"]
        )
    )
    assert [r.autoscaler.spec.metrics[1].target.value_milli for r in target.runs] == [300, 1000]


def test_a_run_says_one_line_per_run_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """What each sync decided is the timeline's ``decision`` column; the HPA's per-sync
    warnings (here: a metric no pod reports, every sync) are not also printed as they happen."""
    unmatched = HPA.replace(
        "metric: {name: inference_concurrency}",
        "metric: {name: inference_concurrency, selector: {matchLabels: {tier: none}}}",
    )
    code, _, stderr = simulate(
        capsys,
        *("--hpa", str(manifest(tmp_path, unmatched)), "--duration", "1m"),
        *("--out", str(tmp_path / "out")),
    )
    assert code == 0
    assert stderr.count("\n") == 1 and stderr.startswith("simulated hpa: 60 s of traffic")
    # (pytest takes log records from stderr; outside it Python's last-resort handler prints them)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("localcluster")] == []
    timeline = (tmp_path / "out" / "hpa" / "timeline.csv").read_text()
    assert timeline.count("FailedGetPodsMetric") == 5
