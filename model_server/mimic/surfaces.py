"""What six inference servers expose to Prometheus, re-read at their source, as data.

One ``Surface`` per server: the families it writes (name as declared, type, unit, label names in
declared order, bucket boundaries), the library that writes the text (which decides the ``_total``
and ``_created`` habits, label order and number formatting), the flags that turn the metrics on,
and the files and versions read. The mimics (``model-server --mimic``) are built from this table,
the fixtures under ``tests/fixtures/servers/`` too, and the presets are meant to cite it.

Where the project's reference (``shared/reference/inference-servers.md``) and the source
disagree, the source is written here and the difference noted in ``Surface.corrections``.

A family's ``feed`` names the simulated quantity that drives it (the mimic has no GPU, so this
is the one place a value is invented): for a served request ``count``, ``e2e_seconds``,
``queue_seconds`` (waiting for a slot), ``compute_seconds`` (holding one), ``prefill_seconds``,
``decode_seconds``, ``inference_seconds`` (prefill + decode), ``ttft_seconds``, ``tpot_seconds``
(the request's mean time per output token), ``itl_seconds`` (one observation per output token
after the first), ``prompt_tokens``, ``output_tokens``, ``max_tokens``, ``n`` (always 1),
``request_bytes``, ``response_bytes``, ``zero`` (a family that exists but the simulation never
moves, e.g. preemptions); ``arrival`` counts requests as they arrive; gauges read ``waiting``,
``running``, ``kv_usage`` (0-1), ``kv_used_tokens``, ``kv_capacity_tokens``,
``kv_reserved_tokens`` (prompt + max new tokens of the running sequences), ``load_seconds``,
``last_queue_ms``, ``last_compute_ms`` or ``const:<number>``.

Pure data and small pure helpers; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

Kind = Literal["counter", "gauge", "histogram", "summary"]
Library = Literal[
    "prometheus_client",
    "prometheus_client_multiprocess",
    "metrics_rs",
    "prometheus_cpp",
    "java_simpleclient",
    "tensorflow_serving",
]

OUTCOMES: Final = ("ok", "shed", "bad_request", "error", "draining", "not_ready", "not_found")
"""How a request ended, as the model server answers it (``ok`` is served)."""
SERVED: Final[Mapping[str, str]] = MappingProxyType({"ok": ""})
ANSWERED: Final[Mapping[str, str]] = MappingProxyType({kind: "" for kind in OUTCOMES})
REQUEST_LABELS: Final = frozenset({"finished_reason", "status", "method", "handler"})
"""Label names whose value comes from the request itself (finish reason, HTTP status class,
method, route template) rather than from the surface's constants."""


@dataclass(frozen=True)
class Source:
    """A file read to confirm a surface, at the version that was read."""

    repo: str
    path: str
    version: str
    """A commit (abbreviated) or a release tag."""
    facts: str
    """What this file confirmed."""


@dataclass(frozen=True)
class Family:
    """One metric family as the server declares it."""

    name: str
    """As declared in the source: a ``prometheus_client`` counter declared ``x_total`` and one
    declared ``x`` are both exposed as ``x_total``; other libraries write the name as is."""
    kind: Kind
    help: str | None
    """The HELP text; None where the server writes no HELP line."""
    unit: str
    """``s``, ``ms``, ``us``, ``tokens``, ``requests``, ``bytes``, ``fraction`` or ``''``."""
    feed: str
    """The simulated quantity behind it (see the module docstring)."""
    labels: tuple[str, ...] = ()
    """Label names in declared order (constants, request labels, the outcome label)."""
    buckets: tuple[float, ...] = ()
    """Histogram upper bounds, without +Inf; empty when ``bucket_rule`` computes them."""
    bucket_rule: str | None = None
    """``1-2-5`` (vLLM: 1, 2, 5, 10, ... up to max_model_len), ``linear-input`` or
    ``linear-total`` (TGI: 100 equal steps up to max input / max total tokens)."""
    scale: float = 1.0
    """The fed quantity is multiplied by this (seconds to microseconds: 1e6)."""
    outcomes: Mapping[str, str] = field(default_factory=lambda: SERVED)
    """Which request outcomes it observes; with ``outcome_label``, the label value of each."""
    outcome_label: str | None = None
    preset: tuple[str, ...] = ()
    """Values of the variable label that exist from start-up (at 0), as servers that create
    every child at init show them; without it a series appears when first touched."""
    fixed: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Constant label values of this family that differ from the surface's constants."""
    multiprocess_mode: str = "mostrecent"
    """For ``prometheus_client_multiprocess`` gauges: ``all`` adds a ``pid`` label."""
    note: str = ""


@dataclass(frozen=True)
class Surface:
    """A server's whole metric surface and where each fact was read."""

    server: str
    title: str
    version: str
    library: Library
    library_version: str
    endpoint: str
    """Path (and port) where the server serves it."""
    enable: str
    """What turns it on."""
    constants: Mapping[str, str]
    """Values of the labels that do not vary per request; ``{model}``, ``{hostname}`` and
    ``{pid}`` are filled in by the mimic."""
    families: tuple[Family, ...]
    sources: tuple[Source, ...]
    llm: bool
    """Whether the server generates tokens (TTFT, KV cache, ``/v1/completions``)."""
    gauges_at_admission: bool = False
    """SGLang sets its scheduler gauges when a batch is logged, not at scrape: an idle pod
    keeps its last values. The mimic samples them when a request enters a slot."""
    appear_on_first_use: bool = False
    """A series exists only once first recorded (a labelled child is created on first use): a
    fresh TGI, SGLang, TorchServe or TF Serving shows no counter or histogram series (and TGI
    and TorchServe no traffic gauge) until the first request; vLLM and Triton create theirs at
    start-up, at 0."""
    corrections: tuple[str, ...] = ()
    """Where the reference and the source disagree (the source wins) or the reference is silent."""
    not_simulated: tuple[str, ...] = ()
    """Families the server writes that the mimic leaves out, and why."""

    def family(self, name: str) -> Family:
        """The family named ``name``; KeyError naming the server otherwise."""
        for family in self.families:
            if family.name == name:
                return family
        raise KeyError(f"{self.server} has no family {name!r}")


def one_two_five(max_value: int) -> tuple[float, ...]:
    """vLLM's ``build_1_2_5_buckets``: 1, 2, 5, 10, 20, 50, ... while <= ``max_value``.

    >>> one_two_five(100)
    (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
    """
    buckets: list[float] = []
    exponent = 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > max_value:
                return tuple(buckets)
            buckets.append(float(value))
        exponent += 1


def geometric(start: float, factor: float, count: int, *, first: str) -> tuple[float, ...]:
    """Bounds built by repeated multiplication, as the Rust and C++ sources do (the floats
    then match theirs bit for bit). ``first="start"`` begins at ``start`` (TF Serving's
    ``ComputeBucketLimits``); ``first="next"`` multiplies before the first push (TGI).
    """
    bounds = []
    value = start
    for _ in range(count):
        if first == "next":
            value *= factor
        bounds.append(value)
        if first == "start":
            value *= factor
    return tuple(bounds)


def linear(maximum: int, steps: int = 100) -> tuple[float, ...]:
    """TGI's token buckets: ``(maximum / 100) * (x + 1)`` for x in 0..99."""
    return tuple((maximum / float(steps)) * (x + 1) for x in range(steps))


def buckets_for(family: Family, max_model_len: int) -> tuple[float, ...]:
    """A histogram's bounds for a server configured with ``max_model_len`` tokens.

    TGI's limits follow its defaults: max total tokens = ``max_model_len``, max input tokens
    one less.
    """
    if family.bucket_rule is None:
        return family.buckets
    if family.bucket_rule == "1-2-5":
        return one_two_five(max_model_len)
    if family.bucket_rule == "linear-input":
        return linear(max_model_len - 1)
    if family.bucket_rule == "linear-total":
        return linear(max_model_len)
    raise ValueError(f"unknown token buckets {family.bucket_rule!r}")


# --- vLLM -------------------------------------------------------------------------------------

VLLM_REQUEST_LATENCY: Final = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
    120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
VLLM_TTFT: Final = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
    10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
VLLM_ITL: Final = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0,
)  # fmt: skip
HTTP_HIGHR: Final = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5,
    5.0, 7.5, 10.0, 30.0, 60.0,
)  # fmt: skip
HTTP_LOWR: Final = (0.1, 0.5, 1.0)

_ENGINE = ("model_name", "engine")


def _vllm_histogram(name: str, help_text: str, unit: str, feed: str, **kwargs: object) -> Family:
    return Family(name, "histogram", help_text, unit, feed, _ENGINE, **kwargs)  # type: ignore[arg-type]


VLLM = Surface(
    server="vllm",
    title="vLLM (V1 engine, one API server)",
    version="0.12 line (vllm/v1/metrics/loggers.py with the 0.12.x deprecation comments)",
    library="prometheus_client",
    library_version="prometheus_client's global REGISTRY (single API server process)",
    endpoint="/metrics on the API port (8000)",
    enable="on by default; --disable-log-stats turns the engine metrics off",
    constants=MappingProxyType({"model_name": "{model}", "engine": "0"}),
    families=(
        Family(
            "vllm:num_requests_running",
            "gauge",
            "Number of requests in model execution batches.",
            "requests",
            "running",
            _ENGINE,
        ),
        Family(
            "vllm:num_requests_waiting",
            "gauge",
            "Number of requests waiting to be processed.",
            "requests",
            "waiting",
            _ENGINE,
        ),
        Family(
            "vllm:kv_cache_usage_perc",
            "gauge",
            "KV-cache usage. 1 means 100 percent usage.",
            "fraction",
            "kv_usage",
            _ENGINE,
            note="a fraction 0-1 despite the name",
        ),
        Family(
            "vllm:prefix_cache_queries",
            "counter",
            "Prefix cache queries, in terms of number of queried tokens.",
            "tokens",
            "prompt_tokens",
            _ENGINE,
        ),
        Family(
            "vllm:prefix_cache_hits",
            "counter",
            "Prefix cache hits, in terms of number of cached tokens.",
            "tokens",
            "zero",
            _ENGINE,
            note="the simulation has no prefix cache",
        ),
        Family(
            "vllm:num_preemptions",
            "counter",
            "Cumulative number of preemption from the engine.",
            "",
            "zero",
            _ENGINE,
            note="the simulation does not preempt",
        ),
        Family(
            "vllm:prompt_tokens",
            "counter",
            "Number of prefill tokens processed.",
            "tokens",
            "prompt_tokens",
            _ENGINE,
        ),
        Family(
            "vllm:generation_tokens",
            "counter",
            "Number of generation tokens processed.",
            "tokens",
            "output_tokens",
            _ENGINE,
        ),
        Family(
            "vllm:request_success",
            "counter",
            "Count of successfully processed requests.",
            "requests",
            "count",
            (*_ENGINE, "finished_reason"),
            preset=("stop", "length", "abort"),
            note="every finished request, aborted ones included, by finished_reason",
        ),
        _vllm_histogram(
            "vllm:request_prompt_tokens",
            "Number of prefill tokens processed.",
            "tokens",
            "prompt_tokens",
            bucket_rule="1-2-5",
        ),
        _vllm_histogram(
            "vllm:request_generation_tokens",
            "Number of generation tokens processed.",
            "tokens",
            "output_tokens",
            bucket_rule="1-2-5",
        ),
        _vllm_histogram(
            "vllm:request_max_num_generation_tokens",
            "Histogram of maximum number of requested generation tokens.",
            "tokens",
            "max_tokens",
            bucket_rule="1-2-5",
        ),
        _vllm_histogram(
            "vllm:request_params_n",
            "Histogram of the n request parameter.",
            "",
            "n",
            buckets=(1.0, 2.0, 5.0, 10.0, 20.0),
        ),
        _vllm_histogram(
            "vllm:request_params_max_tokens",
            "Histogram of the max_tokens request parameter.",
            "tokens",
            "max_tokens",
            bucket_rule="1-2-5",
        ),
        _vllm_histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            "s",
            "ttft_seconds",
            buckets=VLLM_TTFT,
        ),
        _vllm_histogram(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            "s",
            "itl_seconds",
            buckets=VLLM_ITL,
        ),
        _vllm_histogram(
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            "s",
            "tpot_seconds",
            buckets=VLLM_ITL,
        ),
        _vllm_histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            "s",
            "e2e_seconds",
            buckets=VLLM_REQUEST_LATENCY,
            note="nothing below 0.3 s",
        ),
        _vllm_histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            "s",
            "queue_seconds",
            buckets=VLLM_REQUEST_LATENCY,
        ),
        _vllm_histogram(
            "vllm:request_inference_time_seconds",
            "Histogram of time spent in RUNNING phase for request.",
            "s",
            "inference_seconds",
            buckets=VLLM_REQUEST_LATENCY,
        ),
        _vllm_histogram(
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request.",
            "s",
            "prefill_seconds",
            buckets=VLLM_REQUEST_LATENCY,
        ),
        _vllm_histogram(
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request.",
            "s",
            "decode_seconds",
            buckets=VLLM_REQUEST_LATENCY,
        ),
        Family(
            "http_requests_total",
            "counter",
            "Total number of requests by method, status and handler.",
            "requests",
            "count",
            ("method", "status", "handler"),
            outcomes=ANSWERED,
            note="prometheus-fastapi-instrumentator; status is grouped (2xx); /metrics, /health,"
            " /load, /ping, /version and /server_info are excluded",
        ),
        Family(
            "http_request_size_bytes",
            "summary",
            "Content length of incoming requests by handler. Only value of header is respected."
            " Otherwise ignored. No percentile calculated. ",
            "bytes",
            "request_bytes",
            ("handler",),
            outcomes=ANSWERED,
        ),
        Family(
            "http_response_size_bytes",
            "summary",
            "Content length of outgoing responses by handler. Only value of header is"
            " respected. Otherwise ignored. No percentile calculated. ",
            "bytes",
            "response_bytes",
            ("handler",),
            outcomes=ANSWERED,
        ),
        Family(
            "http_request_duration_highr_seconds",
            "histogram",
            "Latency with many buckets but no API specific labels. Made for more accurate"
            " percentile calculations. ",
            "s",
            "e2e_seconds",
            buckets=HTTP_HIGHR,
            outcomes=ANSWERED,
        ),
        Family(
            "http_request_duration_seconds",
            "histogram",
            "Latency with only few buckets by handler. Made to be only used if aggregation by"
            " handler is important. ",
            "s",
            "e2e_seconds",
            ("method", "handler"),
            buckets=HTTP_LOWR,
            outcomes=ANSWERED,
        ),
    ),
    sources=(
        Source(
            "vllm-project/vllm",
            "vllm/v1/metrics/loggers.py",
            "0.12 line (stored version whose comments name 0.12.x)",
            "every vllm: family above: names, help, labels [model_name, engine], buckets;"
            " gpu_cache_usage_perc gone; time_per_output_token_seconds only with"
            " --show-hidden-metrics-for-version=0.11",
        ),
        Source(
            "vllm-project/vllm",
            "vllm/v1/metrics/loggers.py",
            "005a810 (0.10 line)",
            "labels [model_name, engine]; same latency/TTFT buckets; gpu_cache_usage_perc and"
            " gpu_prefix_cache_* still written beside the new names",
        ),
        Source(
            "vllm-project/vllm",
            "vllm/v1/metrics/buckets.py",
            "139b1c3 (recent main)",
            "request latency, TTFT and ITL buckets unchanged; 1-2-5 token buckets",
        ),
        Source(
            "vllm-project/vllm",
            "vllm/v1/metrics/prometheus.py, vllm/entrypoints/cli/serve.py",
            "0fa7aac",
            "global REGISTRY with one API server; PROMETHEUS_MULTIPROC_DIR (multiprocess mode:"
            " no _created, labels sorted) only with --api-server-count > 1; the"
            " instrumentator's excluded handlers",
        ),
        Source(
            "trallnag/prometheus-fastapi-instrumentator",
            "src/prometheus_fastapi_instrumentator/metrics.py, middleware.py",
            "019c8a5",
            "default(): http_requests_total{method,status,handler}, the two size summaries,"
            " highr (no labels) and lowr {method,handler} histograms and their buckets;"
            " status grouped as 2xx; untemplated paths become handler 'none'",
        ),
    ),
    llm=True,
    corrections=(
        "http_request_size_bytes and http_response_size_bytes (summaries, by handler) are part"
        " of the instrumentator's default set; the reference lists only the counter and the two"
        " histograms",
        "vllm:num_requests_waiting_by_reason is absent from the 0.12-line loggers.py read here;"
        " it is later (recent main) and is left out of this surface",
        "label order: the prometheus_client installed here (0.26) sorts label names when it"
        " writes, older releases wrote them as declared; a public capture of vLLM 0.29 shows"
        " them sorted. Prometheus and the parser ignore the order",
        "with --api-server-count > 1 vLLM switches to prometheus_client's multiprocess mode:"
        " no _created series, and gauges use multiprocess_mode=mostrecent",
    ),
    not_simulated=(
        "vllm:iteration_tokens_total (per engine step; the simulation has no steps)",
        "vllm:cache_config_info, vllm:engine_sleep_state, vllm:lora_requests_info, spec-decode,"
        " KV-connector, multi-modal cache and kv_block_* families (configuration, sleep mode,"
        " LoRA and features the simulation does not have)",
    ),
)


# --- SGLang -----------------------------------------------------------------------------------

SGLANG_TTFT: Final = (
    0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0,
    200.0, 400.0,
)  # fmt: skip
SGLANG_E2E: Final = (*SGLANG_TTFT, 600.0, 1200.0, 1800.0, 2400.0)
SGLANG_ITL: Final = (
    0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, 0.060,
    0.080, 0.100, 0.200, 0.400, 0.600, 0.800, 1.000, 2.000, 4.000, 6.000, 8.000,
)  # fmt: skip
SGLANG_QUEUE: Final = (
    0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
    70.0, 80.0, 90.0, 100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1000.0,
    1200.0, 1400.0, 1600.0, 1800.0, 2000.0, 2500.0, 3000.0,
)  # fmt: skip
SGLANG_RETRACTIONS: Final = (
    0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0,
    50.0, 75.0, 100.0,
)  # fmt: skip

_SCHEDULER = ("model_name", "engine_type", "tp_rank", "pp_rank", "moe_ep_rank")
_TOKENIZER = ("model_name", "engine_type")


def _scheduler(name: str, kind: Kind, help_text: str, unit: str, feed: str, **kw: object) -> Family:
    """A family of SGLang's SchedulerMetricsCollector (one series per scheduler rank)."""
    return Family(name, kind, help_text, unit, feed, _SCHEDULER, **kw)  # type: ignore[arg-type]


def _tokenizer(name: str, kind: Kind, help_text: str, unit: str, feed: str, **kw: object) -> Family:
    """A family of SGLang's TokenizerMetricsCollector (the front end)."""
    return Family(name, kind, help_text, unit, feed, _TOKENIZER, **kw)  # type: ignore[arg-type]


SGLANG = Surface(
    server="sglang",
    title="SGLang",
    version="44cedc2 (python/sglang/srt/observability/metrics_collector.py)",
    library="prometheus_client_multiprocess",
    library_version="prometheus_client multiprocess mode (PROMETHEUS_MULTIPROC_DIR is always set)",
    endpoint="/metrics on the server port (30000)",
    enable="--enable-metrics (off by default)",
    constants=MappingProxyType(
        {
            "model_name": "{model}",
            "engine_type": "unified",
            "tp_rank": "0",
            "pp_rank": "0",
            "moe_ep_rank": "0",
            "pid": "{pid}",
        }
    ),
    families=(
        _scheduler(
            "sglang:num_running_reqs",
            "gauge",
            "The number of running requests.",
            "requests",
            "running",
        ),
        _scheduler(
            "sglang:num_used_tokens",
            "gauge",
            "The number of used tokens.",
            "tokens",
            "kv_used_tokens",
        ),
        _scheduler(
            "sglang:token_usage",
            "gauge",
            "The token usage.",
            "fraction",
            "kv_usage",
            note="KV token-pool usage, 0-1",
        ),
        _scheduler(
            "sglang:num_queue_reqs",
            "gauge",
            "The number of requests in the waiting queue.",
            "requests",
            "waiting",
        ),
        _scheduler(
            "sglang:max_total_num_tokens",
            "gauge",
            "Maximum total number of tokens in the KV cache pool.",
            "tokens",
            "kv_capacity_tokens",
        ),
        _scheduler(
            "sglang:cache_hit_rate", "gauge", "The prefix cache hit rate.", "fraction", "const:0"
        ),
        Family(
            "sglang:num_retracted_reqs",
            "gauge",
            "The number of retracted requests.",
            "requests",
            "const:0",
            _SCHEDULER,
            multiprocess_mode="all",
            note="declared without multiprocess_mode, so prometheus_client adds a pid label",
        ),
        _scheduler(
            "sglang:queue_time_seconds",
            "histogram",
            "Histogram of queueing time in seconds.",
            "s",
            "queue_seconds",
            buckets=SGLANG_QUEUE,
        ),
        _tokenizer(
            "sglang:prompt_tokens_total",
            "counter",
            "Number of prefill tokens processed.",
            "tokens",
            "prompt_tokens",
        ),
        _tokenizer(
            "sglang:generation_tokens_total",
            "counter",
            "Number of generation tokens processed.",
            "tokens",
            "output_tokens",
        ),
        _tokenizer(
            "sglang:num_requests_total",
            "counter",
            "Number of requests processed.",
            "requests",
            "count",
            note="incremented per finished request (observe_one_finished_request)",
        ),
        _tokenizer(
            "sglang:num_aborted_requests_total",
            "counter",
            "Number of requests aborted.",
            "requests",
            "zero",
        ),
        _tokenizer(
            "sglang:time_to_first_token_seconds",
            "histogram",
            "Histogram of time to first token in seconds.",
            "s",
            "ttft_seconds",
            buckets=SGLANG_TTFT,
            note="--bucket-time-to-first-token overrides",
        ),
        _tokenizer(
            "sglang:inter_token_latency_seconds",
            "histogram",
            "Histogram of inter-token latency in seconds.",
            "s",
            "itl_seconds",
            buckets=SGLANG_ITL,
        ),
        _tokenizer(
            "sglang:e2e_request_latency_seconds",
            "histogram",
            "Histogram of End-to-end request latency in seconds",
            "s",
            "e2e_seconds",
            buckets=SGLANG_E2E,
            note="--bucket-e2e-request-latency overrides",
        ),
        _tokenizer(
            "sglang:num_retractions",
            "histogram",
            "Histogram of retraction counts per request.",
            "",
            "zero",
            buckets=SGLANG_RETRACTIONS,
        ),
    ),
    sources=(
        Source(
            "sgl-project/sglang",
            "python/sglang/srt/observability/metrics_collector.py",
            "44cedc2",
            "names, help, buckets of the scheduler and tokenizer collectors; queue_time bucket"
            " 0.0; num_retracted_reqs without multiprocess_mode; ITL observed per new token",
        ),
        Source(
            "sgl-project/sglang",
            "python/sglang/srt/observability/scheduler_metrics_mixin.py",
            "44cedc2",
            "scheduler labels model_name, engine_type, tp_rank, pp_rank, moe_ep_rank (+dp_rank"
            " with DP); gauges set in log_prefill_stats / log_decode_stats, not at scrape",
        ),
        Source(
            "sgl-project/sglang",
            "python/sglang/srt/utils (set_prometheus_multiproc_dir)",
            "stored versions",
            "multiprocess mode always: metrics written by MultiProcessCollector (labels sorted,"
            " no _created, pid label on 'all' gauges)",
        ),
        Source(
            "sgl-project/sglang",
            "python/sglang/srt/server_args.py",
            "stored versions",
            "decode_log_interval = 40 (decode iterations between gauge updates)",
        ),
    ),
    llm=True,
    appear_on_first_use=True,
    gauges_at_admission=True,
    corrections=(
        "scheduler labels include moe_ep_rank (the reference lists model_name, engine_type,"
        " tp_rank, pp_rank, dp_rank)",
        "tokenizer labels vary by version: model_name only in older releases, model_name and"
        " engine_type (plus priority and allowed custom labels) in newer ones; this surface"
        " uses the newer pair",
        "the decode log interval is 40 decode iterations (server_args.decode_log_interval), not"
        " a time: gauges go stale at idle, as the reference says",
        "SGLang always runs prometheus_client in multiprocess mode: no _created series, label"
        " names sorted, and gauges declared without multiprocess_mode carry a pid label",
    ),
    not_simulated=(
        "disaggregation, speculative decoding, grammar, LoRA, HiCache, routing-key, per-stage"
        " latency and realtime-token families (features the simulation does not have)",
        "sglang:cached_tokens_total (written only once a prompt hits the cache)",
    ),
)


# --- TGI --------------------------------------------------------------------------------------

TGI_DURATION: Final = geometric(0.0001, 1.5, 35, first="next")

TGI = Surface(
    server="tgi",
    title="Text Generation Inference (v3 backend)",
    version="router/src/server.rs 003eaec; backends/v3/src/{backend,lib}.rs",
    library="metrics_rs",
    library_version="metrics-exporter-prometheus 0.15 (no unit suffixes, no _total)",
    endpoint="/metrics on the API port (and on --prometheus-port, default 9000)",
    enable="on by default",
    constants=MappingProxyType({}),
    families=(
        Family("tgi_queue_size", "gauge", "Current queue size", "requests", "waiting"),
        Family(
            "tgi_batch_current_size",
            "gauge",
            "Current batch size",
            "requests",
            "running",
            note="set to 0 when the running batch empties",
        ),
        Family(
            "tgi_batch_current_max_tokens",
            "gauge",
            "Maximum tokens for the current batch",
            "tokens",
            "kv_reserved_tokens",
            note="the token budget the running batch reserves; set to 0 when it empties",
        ),
        Family(
            "tgi_batch_max_total_tokens",
            "gauge",
            None,
            "tokens",
            "kv_capacity_tokens",
            note="set once at warm-up in v3 lib.rs; no HELP (the describe call names"
            " tgi_batch_total_tokens)",
        ),
        Family("tgi_request_count", "counter", "Total number of requests", "requests", "arrival"),
        Family(
            "tgi_request_success", "counter", "Number of successful requests", "requests", "count"
        ),
        Family(
            "tgi_request_failure",
            "counter",
            None,
            "requests",
            "count",
            ("err",),
            outcomes=MappingProxyType(
                {"shed": "overloaded", "bad_request": "validation", "error": "generation"}
            ),
            outcome_label="err",
            note="never described, so no HELP line",
        ),
        Family(
            "tgi_request_duration",
            "histogram",
            "Request duration",
            "s",
            "e2e_seconds",
            buckets=TGI_DURATION,
        ),
        Family(
            "tgi_request_queue_duration",
            "histogram",
            "Request queue duration",
            "s",
            "queue_seconds",
            buckets=TGI_DURATION,
        ),
        Family(
            "tgi_request_inference_duration",
            "histogram",
            "Request inference duration",
            "s",
            "inference_seconds",
            buckets=TGI_DURATION,
        ),
        Family(
            "tgi_request_mean_time_per_token_duration",
            "histogram",
            "Mean time per token per request",
            "s",
            "tpot_seconds",
            buckets=TGI_DURATION,
            note="TGI divides inference time (prefill included) by generated tokens; the"
            " mimic feeds decode time per token",
        ),
        Family(
            "tgi_request_input_length",
            "histogram",
            "Input token length per request",
            "tokens",
            "prompt_tokens",
            bucket_rule="linear-input",
        ),
        Family(
            "tgi_request_generated_tokens",
            "histogram",
            "Generated tokens per request",
            "tokens",
            "output_tokens",
            bucket_rule="linear-total",
        ),
        Family(
            "tgi_request_max_new_tokens",
            "histogram",
            "Maximum new tokens per request",
            "tokens",
            "max_tokens",
            bucket_rule="linear-total",
        ),
    ),
    sources=(
        Source(
            "huggingface/text-generation-inference",
            "router/src/server.rs",
            "003eaec",
            "bucket matchers (Suffix 'duration': 0.0001*1.5 multiplied before each push, 35"
            " bounds 0.00015..145.6 s; 100 linear token buckets), describe_* help texts",
        ),
        Source(
            "huggingface/text-generation-inference",
            "backends/v3/src/backend.rs, backends/v3/src/lib.rs",
            "stored versions",
            "tgi_batch_current_size / _max_tokens set per batch and reset to 0; token budget ="
            " max_batch_total_tokens - batch max tokens; tgi_batch_max_total_tokens set at"
            " warm-up; tgi_request_failure err values",
        ),
        Source(
            "metrics-rs/metrics",
            "metrics-exporter-prometheus/src/recorder.rs, formatting.rs",
            "stored versions",
            "HELP only for described names; counters (u64) then gauges then distributions, each"
            " family followed by a blank line; values and le written with Rust's f64 Display;"
            " histogram buckets, +Inf, _sum, _count; unconfigured histograms become summaries",
        ),
    ),
    llm=True,
    appear_on_first_use=True,
    corrections=(
        "tgi_request_failure has no HELP line (never described) and tgi_batch_max_total_tokens"
        " none either (the description is registered under tgi_batch_total_tokens)",
        "family order inside each group (counters, gauges, histograms) is a Rust HashMap's:"
        " arbitrary; the mimic sorts by name",
    ),
    not_simulated=(
        "tgi_batch_* histograms and counters by method (prefill/decode batches),"
        " tgi_batch_next_size, tgi_request_validation_duration, tgi_request_skipped_tokens"
        " (a summary: no buckets configured)",
    ),
)


# --- Triton -----------------------------------------------------------------------------------

_TRITON = ("model", "version")


def _triton_counter(name: str, help_text: str, unit: str, feed: str, **kwargs: object) -> Family:
    labels = kwargs.pop("labels", _TRITON)
    return Family(name, "counter", help_text, unit, feed, labels, **kwargs)  # type: ignore[arg-type]


TRITON = Surface(
    server="triton",
    title="Triton Inference Server (core)",
    version="core 05295b7 (2025)",
    library="prometheus_cpp",
    library_version="prometheus-cpp v1.0.1 (pinned in triton-inference-server/third_party)",
    endpoint="/metrics on the metrics port (8002)",
    enable="on by default; the first-response histogram needs --metrics-config"
    " histogram_latencies=true",
    constants=MappingProxyType({"model": "{model}", "version": "1"}),
    families=(
        _triton_counter(
            "nv_inference_request_success",
            "Number of successful inference requests, all batch sizes",
            "requests",
            "count",
        ),
        _triton_counter(
            "nv_inference_request_failure",
            "Number of failed inference requests, all batch sizes",
            "requests",
            "count",
            labels=("model", "version", "reason"),
            outcomes=MappingProxyType({"shed": "REJECTED", "error": "BACKEND"}),
            outcome_label="reason",
            preset=("REJECTED", "CANCELED", "BACKEND", "OTHER"),
        ),
        _triton_counter(
            "nv_inference_count",
            "Number of inferences performed (does not include cached requests)",
            "inferences",
            "count",
        ),
        _triton_counter(
            "nv_inference_exec_count",
            "Number of model executions performed (does not include cached requests)",
            "executions",
            "count",
        ),
        _triton_counter(
            "nv_inference_request_duration_us",
            "Cumulative inference request duration in microseconds (includes cached requests)",
            "us",
            "e2e_seconds",
            scale=1e6,
        ),
        _triton_counter(
            "nv_inference_queue_duration_us",
            "Cumulative inference queuing duration in microseconds (includes cached requests)",
            "us",
            "queue_seconds",
            scale=1e6,
        ),
        _triton_counter(
            "nv_inference_compute_input_duration_us",
            "Cumulative compute input duration in microseconds (does not include cached requests)",
            "us",
            "zero",
        ),
        _triton_counter(
            "nv_inference_compute_infer_duration_us",
            "Cumulative compute inference duration in microseconds (does not include cached"
            " requests)",
            "us",
            "compute_seconds",
            scale=1e6,
        ),
        _triton_counter(
            "nv_inference_compute_output_duration_us",
            "Cumulative inference compute output duration in microseconds (does not include"
            " cached requests)",
            "us",
            "zero",
        ),
        Family(
            "nv_inference_pending_request_count",
            "gauge",
            "Instantaneous number of pending requests awaiting execution per-model.",
            "requests",
            "waiting",
            _TRITON,
        ),
        Family(
            "nv_model_load_duration_secs",
            "gauge",
            "Model load time in seconds",
            "s",
            "load_seconds",
            _TRITON,
        ),
        Family(
            "nv_pinned_memory_pool_total_bytes",
            "gauge",
            "Pinned memory pool total memory size, in bytes",
            "bytes",
            "const:268435456",
        ),
        Family(
            "nv_pinned_memory_pool_used_bytes",
            "gauge",
            "Pinned memory pool used memory size, in bytes",
            "bytes",
            "const:0",
        ),
        Family(
            "nv_inference_first_response_histogram_ms",
            "histogram",
            "Duration from request to first response in milliseconds",
            "ms",
            "e2e_seconds",
            _TRITON,
            buckets=(100.0, 500.0, 2000.0, 5000.0),
            scale=1e3,
            note="for a non-decoupled model the first response is the whole response; model"
            " config model_metrics.metric_control overrides the buckets",
        ),
    ),
    sources=(
        Source(
            "triton-inference-server/core",
            "src/metrics.cc",
            "05295b7",
            "family names, help texts and registration order (the order written)",
        ),
        Source(
            "triton-inference-server/core",
            "src/metric_model_reporter.{h,cc}",
            "05295b7",
            "labels model, version (namespace, _tags, gpu_uuid when known); failure counters"
            " created at start for REJECTED, CANCELED, BACKEND, OTHER; histogram_latencies"
            " creates the first-response histogram, default buckets {100, 500, 2000, 5000} ms;"
            " nv_model_load_duration_secs",
        ),
        Source(
            "triton-inference-server/third_party",
            "CMakeLists.txt",
            "0020c44",
            "prometheus-cpp v1.0.1",
        ),
        Source(
            "jupp0r/prometheus-cpp",
            "core/src/text_serializer.cc",
            "stored versions of the 1.x line",
            "labels from a std::map (sorted by name), le last; histogram _count, _sum, then"
            " buckets and +Inf; doubles with precision max_digits10-1 (%.16g); counts as"
            " integers; families with no series are not written",
        ),
    ),
    llm=False,
    corrections=(
        "the first-response histogram is created for every model since core 05295b7; older"
        " cores (e.g. the one whose ParseConfig takes is_decoupled) create it for decoupled"
        " models only",
        "prometheus-cpp writes a histogram's _count and _sum before its buckets, and numbers as"
        ' %.16g (le="100", not "100.0"); Triton\'s own test parses counts with int()',
        "nv_model_load_duration_secs (gauge per model) and the pinned-memory gauges are written"
        " too",
    ),
    not_simulated=(
        "summaries (summary_latencies=true, off by default), response-cache families (cache"
        " off), GPU and CPU utilization and memory gauges (host facts, not load)",
    ),
)


# --- TorchServe -------------------------------------------------------------------------------

_TS_MODEL = ("model_name", "model_version", "hostname")
_TS_HOST = ("Level", "Hostname")


def _ts_counter(name: str, unit_word: str, unit: str, feed: str, **kwargs: object) -> Family:
    labels = kwargs.pop("labels", _TS_MODEL)
    return Family(
        name,
        "counter",
        f"Torchserve prometheus counter metric with unit: {unit_word}",
        unit,
        feed,
        labels,  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )


TORCHSERVE = Surface(
    server="torchserve",
    title="TorchServe (metrics_mode=prometheus)",
    version="ts/configs/metrics.yaml 0bb0564; frontend PrometheusCounter.java",
    library="java_simpleclient",
    library_version="io.prometheus simpleclient 0.9.0 (no _total added, no _created, labels"
    " written with a trailing comma)",
    endpoint="/metrics on the metrics port (8082)",
    enable="metrics_mode=prometheus in config.properties (the default 'log' mode writes no"
    " Prometheus text; 'legacy' only the three ts_* counters)",
    constants=MappingProxyType(
        {
            "model_name": "{model}",
            "model_version": "default",
            "hostname": "{hostname}",
            "Level": "Host",
            "Hostname": "{hostname}",
        }
    ),
    families=(
        _ts_counter("Requests2XX", "Count", "requests", "count", labels=_TS_HOST),
        _ts_counter(
            "Requests4XX",
            "Count",
            "requests",
            "count",
            labels=_TS_HOST,
            outcomes=MappingProxyType({"bad_request": "", "not_found": ""}),
        ),
        _ts_counter(
            "Requests5XX",
            "Count",
            "requests",
            "count",
            labels=_TS_HOST,
            outcomes=MappingProxyType({"shed": "", "error": "", "draining": "", "not_ready": ""}),
        ),
        _ts_counter(
            "ts_inference_requests_total",
            "Count",
            "requests",
            "arrival",
            note="incremented on receipt",
        ),
        _ts_counter(
            "ts_inference_latency_microseconds",
            "Microseconds",
            "us",
            "e2e_seconds",
            scale=1e6,
            note="job begin to response: queue time included",
        ),
        _ts_counter(
            "ts_queue_latency_microseconds", "Microseconds", "us", "queue_seconds", scale=1e6
        ),
        Family(
            "QueueTime",
            "gauge",
            "Torchserve prometheus gauge metric with unit: Milliseconds",
            "ms",
            "last_queue_ms",
            _TS_HOST,
            note="the queue time of the last job, not a depth",
        ),
        Family(
            "HandlerTime",
            "gauge",
            "Torchserve prometheus gauge metric with unit: ms",
            "ms",
            "last_compute_ms",
            ("ModelName", "Level", "Hostname"),
            fixed=MappingProxyType({"ModelName": "{model}", "Level": "Model"}),
        ),
    ),
    sources=(
        Source(
            "pytorch/serve",
            "ts/configs/metrics.yaml",
            "0bb0564",
            "names, types, units and dimensions of the frontend and model metrics",
        ),
        Source(
            "pytorch/serve",
            "frontend/server/src/main/java/.../format/prometheous/PrometheusCounter.java",
            "stored version",
            "Counter.build().name(name) as declared; help 'Torchserve prometheus counter metric"
            " with unit: <Unit>'",
        ),
        Source(
            "pytorch/serve",
            "frontend/gradle.properties; docs (example /metrics output)",
            "02b15d2",
            "simpleclient 0.9.0: no _total suffix, no _created, trailing comma after the last"
            " label, Java Double.toString values (3.0), families without series still get"
            " HELP and TYPE",
        ),
    ),
    llm=False,
    appear_on_first_use=True,
    corrections=(
        "the model-level gauges (HandlerTime, PredictionTime) are labelled ModelName, Level,"
        " Hostname with Level=Model; host gauges Level, Hostname with Level=Host",
        "'queue time included' in ts_inference_latency_microseconds is taken from the"
        " reference (job/RestJob.java was not re-read)",
    ),
    not_simulated=(
        "host gauges (CPUUtilization, Memory*, Disk*, GPU*), WorkerThreadTime, WorkerLoadTime,"
        " PredictionTime and OpenSessions",
    ),
)


# --- TensorFlow Serving -----------------------------------------------------------------------

TFSERVING_LATENCY: Final = geometric(10.0, 1.8, 33, first="start")

TFSERVING = Surface(
    server="tfserving",
    title="TensorFlow Serving",
    version="servables/tensorflow/util.cc and util/prometheus_exporter.cc (stored versions)",
    library="tensorflow_serving",
    library_version="TF Serving's own PrometheusExporter",
    endpoint="/monitoring/prometheus/metrics on the REST port (8501)",
    enable="--rest_api_port and --monitoring_config_file with prometheus_config { enable: true }",
    constants=MappingProxyType(
        {"model_name": "{model}", "API": "Predict", "entrypoint": "REST", "runtime": "TF1"}
    ),
    families=(
        Family(
            "/tensorflow/serving/request_count",
            "counter",
            "The total number of requests.",
            "requests",
            "count",
            ("model_name", "status"),
            outcomes=MappingProxyType(
                {
                    "ok": "OK",
                    "shed": "UNAVAILABLE",
                    "bad_request": "INVALID_ARGUMENT",
                    "error": "INTERNAL",
                    "not_found": "NOT_FOUND",
                }
            ),
            outcome_label="status",
            note="every request, by status code name",
        ),
        Family(
            "/tensorflow/serving/request_latency",
            "histogram",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            "us",
            "e2e_seconds",
            ("model_name", "API", "entrypoint"),
            buckets=TFSERVING_LATENCY,
            scale=1e6,
            note="successful requests only",
        ),
        Family(
            "/tensorflow/serving/runtime_latency",
            "histogram",
            "Distribution of wall time (in microseconds) for Tensorflow runtime.",
            "us",
            "compute_seconds",
            ("model_name", "API", "runtime"),
            buckets=TFSERVING_LATENCY,
            scale=1e6,
        ),
    ),
    sources=(
        Source(
            "tensorflow/serving",
            "tensorflow_serving/servables/tensorflow/util.cc",
            "stored version",
            "request_count {model_name, status}; request_latency {model_name, API, entrypoint}"
            " and runtime_latency {model_name, API, runtime}: Exponential(10, 1.8, 33) µs",
        ),
        Source(
            "tensorflow/serving",
            "tensorflow_serving/model_servers/(tfrt_)prediction_service_impl.cc",
            "stored versions",
            "latency recorded only when the status is OK; the count for every request",
        ),
        Source(
            "tensorflow/serving",
            "tensorflow_serving/util/prometheus_exporter.cc",
            "021efbd",
            "'/' becomes ':' in names; TYPE lines only (no HELP); scalars as %d; le and _sum"
            " through absl::StrCat (6 significant digits); '{}' even without labels; last"
            " bucket +Inf",
        ),
    ),
    llm=False,
    appear_on_first_use=True,
    corrections=(
        "the exporter writes no HELP lines, integer counter values, and le bounds and _sum"
        ' rounded to 6 significant digits (le="357.047"; a large sum as 1.23457e+06)',
        "TensorFlow's histogram counts a value equal to a bound in the next bucket (x < bound),"
        " unlike Prometheus' le",
    ),
    not_simulated=(
        ":tensorflow:core:* graph and session families, request_example_count(s) (Classify and"
        " Regress with tf.Examples), batching_session queuing latency (batching off)",
    ),
)


SERVERS: Final[Mapping[str, Surface]] = MappingProxyType(
    {s.server: s for s in (VLLM, SGLANG, TGI, TRITON, TORCHSERVE, TFSERVING)}
)


def surface(server: str) -> Surface:
    """The surface of ``server``; ValueError listing the known servers otherwise."""
    try:
        return SERVERS[server]
    except KeyError:
        raise ValueError(f"unknown server {server!r}: choose one of {', '.join(SERVERS)}") from None


__all__ = [
    "OUTCOMES",
    "REQUEST_LABELS",
    "SERVERS",
    "Family",
    "Kind",
    "Library",
    "Source",
    "Surface",
    "buckets_for",
    "surface",
]
