"""The presets: for each kind of model server, where every catalog signal lives in its metrics.

One table drives both ways of reading a real server: ``--source prometheus`` (the PromQL of
``adapter.prometheus.promql``) and the relay sidecar (``inference-adapter relay``, which scrapes
the server and pushes). Each entry was checked at the server's own source (``Citation``: the
repository, file and version read) and against the exposition the mimics write
(``model_server/mimic/surfaces.py``, docs/server-metrics.md); where the project's reference and
the source disagree, the source won. ``generic`` is built from names given on the command line.

Pure data.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from adapter.catalog import Signal
from adapter.prometheus.sources import (
    Citation,
    Counter,
    Gauge,
    Histogram,
    Mean,
    Preset,
    Series,
    Source,
)


def _gauge(*names: str, within_pod: str = "sum") -> Gauge:
    return Gauge(tuple(Series(name) for name in names), within_pod)  # type: ignore[arg-type]


def _counter(*names: str) -> Counter:
    return Counter(tuple(Series(name) for name in names))


def _table(entries: dict[Signal, Any]) -> Mapping[Signal, Any]:
    return MappingProxyType(entries)


NO_KV = "no KV-cache utilization metric"
NO_TTFT = "no time-to-first-token metric"

# --- vLLM ---------------------------------------------------------------------------------------

_VLLM_LATENCY = Histogram("vllm:e2e_request_latency_seconds")

VLLM = Preset(
    name="vllm",
    title="vLLM (V1 engine)",
    enable="on by default (--disable-log-stats turns the engine metrics off); /metrics on the"
    " API port",
    inputs=_table(
        {
            Signal.QUEUE_DEPTH: _gauge("vllm:num_requests_waiting"),
            Signal.CONCURRENCY: _gauge("vllm:num_requests_waiting", "vllm:num_requests_running"),
            Signal.KV_CACHE_UTILIZATION: _gauge("vllm:kv_cache_usage_perc", within_pod="mean"),
            Signal.REQUESTS: _counter("vllm:request_success_total"),
            Signal.LATENCY: _VLLM_LATENCY,
            Signal.LATENCY_MEAN: _VLLM_LATENCY.mean(),
            Signal.TIME_TO_FIRST_TOKEN: Histogram("vllm:time_to_first_token_seconds"),
        }
    ),
    lacks=_table({}),
    citations=(
        Citation(
            "vllm-project/vllm",
            "vllm/v1/metrics/loggers.py",
            "0.12 line; 005a810 (0.10 line)",
            "gauges num_requests_waiting, num_requests_running, kv_cache_usage_perc (a 0-1"
            " fraction) per engine; for every finished request request_success{finished_reason}"
            " is incremented and e2e_request_latency_seconds observed in the same loop;"
            " time_to_first_token_seconds per first token",
        ),
        Citation(
            "vllm-project/vllm",
            "vllm/v1/metrics/buckets.py",
            "139b1c3",
            "e2e buckets 0.3 ... 7680 s, TTFT buckets 0.001 ... 2560 s",
        ),
    ),
    notes=_table(
        {
            Signal.QUEUE_DEPTH: "summed over the data-parallel engines (label engine)",
            Signal.KV_CACHE_UTILIZATION: (
                "the mean over the pod's engines; vLLM 0.11 and older also name it"
                " vllm:gpu_cache_usage_perc, which this preset does not read"
            ),
            Signal.REQUESTS: (
                "every finished request, aborted ones included (summed over finished_reason)"
            ),
            Signal.LATENCY: (
                "the first bucket ends at 0.3 s: below it the quantile is interpolated from 0,"
                " so a sub-second SLO is judged by buckets 0.3, 0.5, 0.8 and 1 s wide"
            ),
        }
    ),
)

# --- SGLang -------------------------------------------------------------------------------------

_SGLANG_LATENCY = Histogram("sglang:e2e_request_latency_seconds")

SGLANG = Preset(
    name="sglang",
    title="SGLang",
    enable="--enable-metrics (off by default); /metrics on the server port",
    inputs=_table(
        {
            Signal.QUEUE_DEPTH: _gauge("sglang:num_queue_reqs"),
            Signal.CONCURRENCY: _gauge("sglang:num_queue_reqs", "sglang:num_running_reqs"),
            Signal.KV_CACHE_UTILIZATION: _gauge("sglang:token_usage", within_pod="mean"),
            Signal.REQUESTS: _counter("sglang:num_requests_total"),
            Signal.LATENCY: _SGLANG_LATENCY,
            Signal.LATENCY_MEAN: _SGLANG_LATENCY.mean(),
            Signal.TIME_TO_FIRST_TOKEN: Histogram("sglang:time_to_first_token_seconds"),
        }
    ),
    lacks=_table({}),
    citations=(
        Citation(
            "sgl-project/sglang",
            "python/sglang/srt/observability/metrics_collector.py",
            "44cedc2",
            "num_queue_reqs, num_running_reqs, token_usage (0-1) per scheduler; num_requests_total"
            " and e2e_request_latency_seconds per finished request; time_to_first_token_seconds",
        ),
        Citation(
            "sgl-project/sglang",
            "python/sglang/srt/observability/scheduler_metrics_mixin.py",
            "44cedc2",
            "scheduler gauges are set when a batch is logged (every 40 decode steps), not at"
            " scrape: an idle server keeps its last values",
        ),
    ),
    notes=_table(
        {
            Signal.QUEUE_DEPTH: (
                "set when a batch is logged, so an idle server shows its last queue;"
                " absent until the first batch. One scheduler per data-parallel rank writes it"
                " unless --enable-metrics-for-all-schedulers (then tensor-parallel ranks repeat it)"
            ),
            Signal.LATENCY: "the first bucket ends at 0.1 s",
            Signal.TIME_TO_FIRST_TOKEN: "the first bucket ends at 0.1 s",
        }
    ),
)

# --- TGI ----------------------------------------------------------------------------------------

_TGI_LATENCY = Histogram("tgi_request_duration")

TGI = Preset(
    name="tgi",
    title="Text Generation Inference",
    enable="on by default; /metrics on the API port and on --prometheus-port (9000)",
    inputs=_table(
        {
            Signal.QUEUE_DEPTH: _gauge("tgi_queue_size"),
            Signal.CONCURRENCY: _gauge("tgi_queue_size", "tgi_batch_current_size"),
            Signal.REQUESTS: _counter("tgi_request_success", "tgi_request_failure"),
            Signal.LATENCY: _TGI_LATENCY,
            Signal.LATENCY_MEAN: _TGI_LATENCY.mean(),
        }
    ),
    lacks=_table(
        {
            Signal.KV_CACHE_UTILIZATION: (
                f"TGI exports {NO_KV} (tgi_batch_current_max_tokens /"
                " tgi_batch_max_total_tokens is the share of the token budget the running batch"
                " reserves, not KV use, and is not served as one)"
            ),
            Signal.TIME_TO_FIRST_TOKEN: f"TGI exports {NO_TTFT}",
        }
    ),
    citations=(
        Citation(
            "huggingface/text-generation-inference",
            "router/src/server.rs",
            "003eaec",
            "tgi_request_duration buckets 0.0001 x 1.5^k (0.00015 ... 145.6 s); no TTFT or KV"
            " metric is registered",
        ),
        Citation(
            "huggingface/text-generation-inference",
            "backends/v3/src/backend.rs, backends/v3/src/lib.rs",
            "003eaec",
            "tgi_queue_size, tgi_batch_current_size; tgi_request_success on completion,"
            " tgi_request_failure{err} on failure",
        ),
    ),
    notes=_table(
        {
            Signal.REQUESTS: "successes and failures (validation, overloaded, generation ...)",
            Signal.LATENCY: "successful requests only",
        }
    ),
)

# --- Triton -------------------------------------------------------------------------------------

TRITON = Preset(
    name="triton",
    title="Triton Inference Server",
    enable="on by default; /metrics on the metrics port (8002)",
    inputs=_table(
        {
            Signal.QUEUE_DEPTH: _gauge("nv_inference_pending_request_count"),
            Signal.REQUESTS: _counter(
                "nv_inference_request_success", "nv_inference_request_failure"
            ),
            Signal.LATENCY_MEAN: Mean(
                Series("nv_inference_request_duration_us"),
                _counter("nv_inference_request_success"),
                1e-6,
            ),
            Signal.TIME_TO_FIRST_TOKEN: Histogram(
                "nv_inference_first_response_histogram_ms",
                unit_seconds=1e-3,
                requires="--metrics-config histogram_latencies=true",
            ),
        }
    ),
    lacks=_table(
        {
            Signal.CONCURRENCY: (
                "Triton exports no gauge of the requests in service (its duration metrics"
                " are cumulative microsecond counters)"
            ),
            Signal.KV_CACHE_UTILIZATION: (
                f"Triton's core exports {NO_KV} (the TensorRT-LLM backend's block"
                " gauges are not read)"
            ),
            Signal.LATENCY: (
                "Triton exports no end-to-end latency histogram: its request duration is a"
                " cumulative counter, which gives only a mean (inference_latency_mean_seconds), and"
                " its summaries (summary_latencies=true) are per pod and cannot be pooled"
            ),
        }
    ),
    citations=(
        Citation(
            "triton-inference-server/core",
            "src/infer_stats.cc",
            "05295b7",
            "UpdateSuccess increments inf_success and adds the request duration (us) to the"
            " request_duration counter; UpdateFailure increments only inf_failure_<reason>",
        ),
        Citation(
            "triton-inference-server/core",
            "src/metrics.cc, src/metric_model_reporter.cc",
            "05295b7",
            "nv_inference_pending_request_count; the failure counter's reason label; the"
            " first-response histogram with histogram_latencies=true, buckets 100, 500, 2000,"
            " 5000 ms by default",
        ),
    ),
    notes=_table(
        {
            Signal.QUEUE_DEPTH: "summed over the pod's models and versions",
            Signal.REQUESTS: "successes and failures (REJECTED, CANCELED, BACKEND, OTHER)",
            Signal.LATENCY_MEAN: "successful requests only (cache hits included)",
            Signal.TIME_TO_FIRST_TOKEN: (
                "milliseconds on the wire; the default buckets (100, 500, 2000, 5000 ms) are too"
                " coarse for a sub-second SLO: set model_metrics in the model config. For a model"
                " that is not decoupled the first response is the whole response"
            ),
        }
    ),
)

# --- TorchServe ---------------------------------------------------------------------------------

_TS_REQUESTS = _counter("ts_inference_requests_total")

TORCHSERVE = Preset(
    name="torchserve",
    title="TorchServe",
    enable="metrics_mode=prometheus in config.properties (the default 'log' mode writes no"
    " Prometheus text); /metrics on the metrics port (8082)",
    inputs=_table(
        {
            Signal.REQUESTS: _TS_REQUESTS,
            Signal.LATENCY_MEAN: Mean(
                Series("ts_inference_latency_microseconds"), _TS_REQUESTS, 1e-6
            ),
        }
    ),
    lacks=_table(
        {
            Signal.QUEUE_DEPTH: (
                "TorchServe exports no queue-depth gauge (QueueTime is the last job's"
                " wait in milliseconds)"
            ),
            Signal.CONCURRENCY: "TorchServe exports no gauge of the requests in flight",
            Signal.KV_CACHE_UTILIZATION: f"TorchServe exports {NO_KV}",
            Signal.LATENCY: (
                "TorchServe exports no latency histogram, only cumulative microseconds, which"
                " give a mean (inference_latency_mean_seconds)"
            ),
            Signal.TIME_TO_FIRST_TOKEN: f"TorchServe exports {NO_TTFT}",
        }
    ),
    citations=(
        Citation(
            "pytorch/serve",
            "ts/configs/metrics.yaml",
            "0bb0564",
            "ts_inference_requests_total, ts_inference_latency_microseconds,"
            " ts_queue_latency_microseconds (counters, model_name, model_version, hostname)",
        ),
        Citation(
            "pytorch/serve",
            "frontend/server/src/main/java/org/pytorch/serve/job/RestJob.java",
            "0807fb8",
            "ts_inference_latency_microseconds grows by the job's begin-to-response time when"
            " the backend answers (queue time included); an error sent without a backend"
            " response adds nothing",
        ),
    ),
    notes=_table(
        {
            Signal.REQUESTS: "arrivals (counted on receipt), not completions",
            Signal.LATENCY_MEAN: (
                "the latency counter over the arrivals: requests refused or still"
                " waiting count in the denominator, so the mean reads low by their share"
            ),
        }
    ),
)

# --- TF Serving ---------------------------------------------------------------------------------

_TFS_LATENCY = Histogram(":tensorflow:serving:request_latency", unit_seconds=1e-6)

TFSERVING = Preset(
    name="tfserving",
    title="TensorFlow Serving",
    enable="--rest_api_port and --monitoring_config_file with prometheus_config { enable: true"
    " }; /monitoring/prometheus/metrics on the REST port",
    inputs=_table(
        {
            Signal.REQUESTS: _counter(":tensorflow:serving:request_count"),
            Signal.LATENCY: _TFS_LATENCY,
            Signal.LATENCY_MEAN: _TFS_LATENCY.mean(),
        }
    ),
    lacks=_table(
        {
            Signal.QUEUE_DEPTH: "TF Serving exports no queue-depth gauge",
            Signal.CONCURRENCY: "TF Serving exports no gauge of the requests in flight",
            Signal.KV_CACHE_UTILIZATION: f"TF Serving exports {NO_KV}",
            Signal.TIME_TO_FIRST_TOKEN: f"TF Serving exports {NO_TTFT}",
        }
    ),
    citations=(
        Citation(
            "tensorflow/serving",
            "tensorflow_serving/servables/tensorflow/util.cc",
            "stored version",
            "request_count{model_name,status} for every request; request_latency in"
            " microseconds, buckets 10 x 1.8^i (i < 33)",
        ),
        Citation(
            "tensorflow/serving",
            "tensorflow_serving/model_servers/prediction_service_impl.cc",
            "stored version",
            "the latency is recorded only when the status is OK",
        ),
    ),
    notes=_table(
        {
            Signal.REQUESTS: "every request, whatever its status",
            Signal.LATENCY: "successful requests only; microseconds on the wire",
        }
    ),
)

# --- this project's model server -----------------------------------------------------------------

_OWN_LATENCY = Histogram("inference_request_duration_seconds")

MODEL_SERVER = Preset(
    name="model-server",
    title="this project's model server",
    enable="always on (/metrics)",
    inputs=_table(
        {
            Signal.QUEUE_DEPTH: _gauge("inference_queue_depth"),
            Signal.CONCURRENCY: _gauge("inference_concurrency"),
            Signal.REQUESTS: Counter((_OWN_LATENCY.count,)),
            Signal.LATENCY: _OWN_LATENCY,
            Signal.LATENCY_MEAN: _OWN_LATENCY.mean(),
        }
    ),
    lacks=_table(
        {
            Signal.KV_CACHE_UTILIZATION: f"the model server exports {NO_KV}",
            Signal.TIME_TO_FIRST_TOKEN: f"the model server exports {NO_TTFT}",
        }
    ),
    citations=(
        Citation(
            "this repository",
            "model_server/metrics.py",
            "this version",
            "queue gauges and the end-to-end latency histogram, whose _count counts completed"
            " requests",
        ),
    ),
)
"""The default of ``--source prometheus``: the pods this project's model server runs."""

PRESETS: Mapping[str, Preset] = MappingProxyType(
    {p.name: p for p in (VLLM, SGLANG, TGI, TRITON, TORCHSERVE, TFSERVING, MODEL_SERVER)}
)
GENERIC = "generic"
NAMES = (*PRESETS, GENERIC)


def generic(
    *,
    queue_gauge: str | None = None,
    running_gauge: str | None = None,
    requests_counter: str | None = None,
    latency_histogram: str | None = None,
    latency_unit_seconds: float = 1.0,
    ttft_histogram: str | None = None,
    kv_gauge: str | None = None,
) -> Preset:
    """A preset for any server, from the names of its series (as exposed).

    Concurrency is waiting plus running, so it needs both gauges; the requests default to the
    latency histogram's ``_count``; the mean comes from the histogram's ``_sum`` and ``_count``.

    >>> preset = generic(queue_gauge="queue", latency_histogram="latency_seconds")
    >>> sorted(s.value for s in preset.inputs)
    ['inference_queue_depth', 'latency', 'latency_mean', 'requests']
    """
    inputs: dict[Signal, Source] = {}
    if queue_gauge:
        inputs[Signal.QUEUE_DEPTH] = _gauge(queue_gauge)
        if running_gauge:
            inputs[Signal.CONCURRENCY] = _gauge(queue_gauge, running_gauge)
    if kv_gauge:
        inputs[Signal.KV_CACHE_UTILIZATION] = _gauge(kv_gauge, within_pod="mean")
    if latency_histogram:
        latency = Histogram(latency_histogram, unit_seconds=latency_unit_seconds)
        inputs[Signal.LATENCY] = latency
        inputs[Signal.LATENCY_MEAN] = latency.mean()
        inputs[Signal.REQUESTS] = Counter((latency.count,))
    if requests_counter:
        inputs[Signal.REQUESTS] = _counter(requests_counter)
    if ttft_histogram:
        inputs[Signal.TIME_TO_FIRST_TOKEN] = Histogram(
            ttft_histogram, unit_seconds=latency_unit_seconds
        )
    flags = {
        Signal.QUEUE_DEPTH: "--queue-gauge",
        Signal.CONCURRENCY: "--queue-gauge and --running-gauge",
        Signal.KV_CACHE_UTILIZATION: "--kv-gauge",
        Signal.REQUESTS: "--requests-counter or --latency-histogram",
        Signal.LATENCY: "--latency-histogram",
        Signal.LATENCY_MEAN: "--latency-histogram",
        Signal.TIME_TO_FIRST_TOKEN: "--ttft-histogram",
    }
    lacks = {
        signal: f"not named on the command line ({flag})"
        for signal, flag in flags.items()
        if signal not in inputs
    }
    return Preset(
        name=GENERIC,
        title="a server named on the command line",
        enable="whatever that server needs",
        inputs=MappingProxyType(inputs),
        lacks=MappingProxyType(lacks),
    )


def lookup(name: str) -> Preset:
    """The preset called ``name`` (not ``generic``, which needs names: ``generic()``);
    ValueError listing the presets otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(NAMES)}") from None
