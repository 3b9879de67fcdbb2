"""``model-server``: a simulated inference pod; ``model-server loadgen``: its load generator.

Every flag can also come from the environment (``MODEL_SERVER_<FLAG>``, e.g.
``MODEL_SERVER_MAX_CONCURRENCY=8``), and the pod's identity from the Kubernetes downward API
(``POD_NAME``, ``POD_NAMESPACE``, ``POD_UID``, a labels file), so the same image runs anywhere.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from adapter import arguments, durations, eventloop
from adapter.client import flags
from model_server.app import ModelServerConfig, serve
from model_server.mimic import SERVERS
from model_server.service_time import distribution_arg
from model_server.tokens import TokenModel

ENV_PREFIX = "MODEL_SERVER_"


def _env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="model-server",
        description="A simulated inference server (KServe v2) that pushes its queue depth and"
        " latency to the inference metrics adapter. `model-server loadgen --help` for the load"
        " generator.",
    )

    def add(flag: str, **kwargs: object) -> None:
        env = environ.get(_env_name(flag))
        if env is not None:
            kwargs["default"] = env.split(",") if kwargs.get("action") == "append" else env
        help_text = str(kwargs.pop("help", ""))
        parser.add_argument(flag, help=f"{help_text} [env {_env_name(flag)}]", **kwargs)  # type: ignore[arg-type]

    add("--host", default="0.0.0.0", help="address to listen on")  # noqa: S104
    add("--port", type=int, default=8080, help="HTTP port")
    add("--model-name", default="model", help="the model's name in /v2/models/{name}")
    add("--mode", choices=("compute", "simulated"), default="simulated", help="service-time mode")
    add(
        "--service-time",
        type=distribution_arg,
        default="lognormal:20ms,0.5",
        help="simulated service time: constant:20ms, exponential:20ms (mean) or"
        " lognormal:20ms,0.5 (median, sigma)",
    )
    add(
        "--batch-growth",
        type=arguments.non_negative_number,
        default=0.0,
        help="a simulated batch of n costs 1 + growth*(n-1) single draws",
    )
    add("--max-concurrency", type=arguments.positive_int, default=4, help="worker slots")
    add(
        "--max-queue",
        type=arguments.count,
        default=100,
        help="waiting requests beyond which 503 is answered",
    )
    add(
        "--max-batch-size",
        type=arguments.positive_int,
        default=1,
        help="dynamic batching: requests per batch",
    )
    add(
        "--batch-timeout-ms",
        type=arguments.non_negative_number,
        default=0.0,
        help="dynamic batching: how long a batch waits to fill",
    )
    add(
        "--model-size-mb",
        type=arguments.non_negative_number,
        default=16.0,
        help="weight memory to load",
    )
    add("--seed", type=int, default=0, help="seed of the weights and the service-time draws")
    flags.add_push_flags(add, environ)
    add(
        "--event-loop",
        choices=eventloop.CHOICES,
        default=eventloop.default(),
        help="the asyncio event loop to run on (default: uvloop where installed, else asyncio)",
    )
    add(
        "--drain-timeout",
        type=durations.duration_arg,
        default="30s",
        help="on SIGTERM, exit within this long",
    )
    add(
        "--mimic",
        choices=tuple(SERVERS),
        default=None,
        help="serve this real server's metric surface on /metrics (names, types, units, labels,"
        " buckets) from the same simulation; vllm, sglang and tgi generate tokens and answer"
        " POST /v1/completions too",
    )
    add(
        "--max-model-len",
        type=arguments.positive_int,
        default=4096,
        help="tokens per sequence (LLM mimics)",
    )
    add(
        "--prompt-tokens",
        type=arguments.positive_int,
        default=200,
        help="median prompt length drawn for requests that bring none (LLM mimics)",
    )
    add(
        "--output-tokens",
        type=arguments.positive_int,
        default=100,
        help="median output length drawn",
    )
    add(
        "--prefill-time-per-token",
        type=durations.duration_arg,
        default="100us",
        help="prefill time per prompt token (LLM mimics)",
    )
    add(
        "--time-per-output-token",
        type=durations.duration_arg,
        default="10ms",
        help="a decode step with one sequence running (LLM mimics)",
    )
    add(
        "--batch-slowdown",
        type=arguments.non_negative_number,
        default=0.1,
        help="each other sequence decoding makes a step this much longer (LLM mimics)",
    )
    add(
        "--kv-cache-tokens",
        type=arguments.positive_int,
        default=16384,
        help="KV cache size (LLM mimics)",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> ModelServerConfig:
    """Flags (already parsed) into configuration; ValueError with a one-line message."""
    return ModelServerConfig(
        host=args.host,
        port=args.port,
        model_name=args.model_name,
        mode=args.mode,
        service_time=args.service_time,
        batch_growth=args.batch_growth,
        max_concurrency=args.max_concurrency,
        max_queue=args.max_queue,
        max_batch_size=args.max_batch_size,
        batch_timeout_seconds=args.batch_timeout_ms / 1000,
        model_size_mb=args.model_size_mb,
        seed=args.seed,
        push=flags.push_settings(args),
        drain_timeout_seconds=args.drain_timeout,
        mimic=args.mimic,
        tokens=TokenModel(
            prompt_median_tokens=args.prompt_tokens,
            output_median_tokens=args.output_tokens,
            max_model_len=args.max_model_len,
            prefill_seconds_per_token=args.prefill_time_per_token,
            decode_step_seconds=args.time_per_output_token,
            batch_slowdown=args.batch_slowdown,
            kv_capacity_tokens=args.kv_cache_tokens,
        ),
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["loadgen"]:
        from model_server import loadgen

        return loadgen.main(argv[1:])
    parser = build_parser(os.environ)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except (ValueError, OSError) as error:
        parser.exit(2, f"model-server: {error}\n")
    loop_problem = eventloop.problem(args.event_loop)
    if loop_problem is not None:
        parser.exit(2, f"model-server: {loop_problem}\n")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", force=True
    )
    eventloop.run(serve(config), args.event_loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
