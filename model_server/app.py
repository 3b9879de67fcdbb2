"""The model server's aiohttp application: KServe v2 endpoints, readiness, pushing, draining.

``make_app(state)`` is the factory; ``serve(config)`` runs it until SIGTERM or SIGINT and then
drains: readiness goes false, new requests get 503 with ``Retry-After``, queued and running
requests finish, a final push is sent, and the process exits within ``drain_timeout_seconds``.

With ``mimic`` set (``--mimic vllm``...), ``/metrics`` serves that server's metric surface instead
of the model server's own (``model_server.mimic``); for a language-model server the slots run
``model_server.llm`` (tokens, time to first token, KV cache) and ``POST /v1/completions`` answers
beside the v2 route.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapter import background
from adapter.client import (
    LatencyRecorder,
    PodIdentity,
    PushClient,
)
from adapter.client.flags import PushSettings
from adapter.report import CONCURRENCY, QUEUE_DEPTH, REQUESTS_SHED, WORKER_SLOTS
from model_server import openai, protocol
from model_server.llm import LanguageModel
from model_server.metrics import OUTCOMES, ServerMetrics
from model_server.mimic import surfaces
from model_server.mimic import web as mimic_web
from model_server.mimic.recorder import Gauges, Recorder, Served
from model_server.model import Mlp
from model_server.scheduler import PreciseSleeper, Scheduler, Shed
from model_server.service_time import ServiceTime, ServiceTimeSampler
from model_server.tokens import TokenModel

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "1"
FINAL_PUSH_SECONDS = 3.0
"""Part of the drain timeout kept for the last push."""
SHUTDOWN_SECONDS = 1.0
"""Part of the drain timeout for closing the server; requests still running then are cut."""


@dataclass(frozen=True)
class ModelServerConfig:
    """Everything the model server needs; built by ``model_server.__main__``."""

    host: str = "0.0.0.0"  # noqa: S104 - a pod serves on all its interfaces
    port: int = 8080
    model_name: str = "model"
    mode: str = "simulated"
    """``compute`` (real matrix work) or ``simulated`` (a sleep drawn from ``service_time``)."""
    service_time: ServiceTime = field(default_factory=lambda: ServiceTime("lognormal", 0.02, 0.5))
    batch_growth: float = 0.0
    """Simulated batches of n requests take ``1 + batch_growth*(n - 1)`` times one draw."""
    max_concurrency: int = 4
    max_queue: int = 100
    max_batch_size: int = 1
    batch_timeout_seconds: float = 0.0
    model_size_mb: float = 16.0
    seed: int = 0
    push: PushSettings = field(
        default_factory=lambda: PushSettings(PodIdentity("default", "model-server"))
    )
    """Who the pod is and where it pushes (no adapter URL: it does not push)."""
    drain_timeout_seconds: float = 30.0
    mimic: str | None = None
    """Serve this real server's metric surface (a key of ``mimic.SERVERS``); None: our own."""
    tokens: TokenModel = field(default_factory=TokenModel)
    """The simulated language model of the vLLM, SGLang and TGI mimics."""


@dataclass
class ModelServerState:
    """What the handlers share."""

    config: ModelServerConfig
    recorder: LatencyRecorder = field(default_factory=LatencyRecorder)
    service_times: LatencyRecorder = field(default_factory=LatencyRecorder)
    """How long each request held a worker slot: the pushed ``service_time`` sketch."""
    model: Mlp | None = None
    scheduler: Scheduler | None = None
    push_client: PushClient | None = None
    draining: bool = False
    active_requests: int = 0
    metrics: ServerMetrics = field(init=False)
    mimic: Recorder | None = field(init=False, default=None)
    """The mimicked server's families, when ``config.mimic`` is set."""
    language_model: LanguageModel | None = None
    """The simulated language model, for a language-model mimic once loaded."""
    load_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.metrics = ServerMetrics(lambda: self.scheduler, lambda: self.push_client)
        config = self.config
        if config.mimic is not None:
            self.mimic = Recorder(
                surfaces.surface(config.mimic),
                model=config.model_name,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                max_model_len=config.tokens.max_model_len,
            )

    def mimic_gauges(self) -> Gauges:
        """The instantaneous state a mimicked server's gauges show."""
        scheduler = self.scheduler
        waiting = scheduler.queue_depth if scheduler else 0
        running = scheduler.concurrency - waiting if scheduler else 0
        kv = self.language_model.kv_state() if self.language_model else None
        return Gauges(
            waiting=waiting,
            running=running,
            kv_usage=kv.usage if kv else 0.0,
            kv_used_tokens=kv.used_tokens if kv else 0.0,
            kv_capacity_tokens=kv.capacity_tokens if kv else 0.0,
            kv_reserved_tokens=kv.reserved_tokens if kv else 0.0,
            load_seconds=self.load_seconds,
        )

    @property
    def ready(self) -> bool:
        return self.scheduler is not None and not self.draining

    def gauges(self) -> dict[str, float]:
        """The gauges pushed to the adapter: queue depth and concurrency as their means over
        the push interval, the worker slots (a batching server's batch seats; 0 while the model
        loads) and, once it serves, the requests shed since start (a counter)."""
        scheduler = self.scheduler
        if scheduler is None:  # loading its model: no slot serves yet
            return {QUEUE_DEPTH: 0.0, CONCURRENCY: 0.0, WORKER_SLOTS: 0.0}
        queue_depth, concurrency = scheduler.take_mean_gauges()
        return {
            QUEUE_DEPTH: round(queue_depth, 3),
            CONCURRENCY: round(concurrency, 3),
            WORKER_SLOTS: float(scheduler.max_concurrency * scheduler.max_batch_size),
            REQUESTS_SHED: float(scheduler.stats.shed),
        }


STATE = web.AppKey("state", ModelServerState)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _error(status: int, message: str, retry: bool = False) -> web.Response:
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if retry else None
    return _json({"error": message}, status, headers)


def _check_model(request: web.Request) -> None:
    name = request.match_info["name"]
    expected = request.app[STATE].config.model_name
    if name != expected:
        raise web.HTTPNotFound(
            text=json.dumps({"error": f"unknown model {name!r}; this server serves {expected!r}"}),
            content_type="application/json",
        )


async def live(request: web.Request) -> web.Response:
    return _json({"live": True})


async def ready(request: web.Request) -> web.Response:
    is_ready = request.app[STATE].ready
    return _json({"ready": is_ready}, 200 if is_ready else 503)


async def model_metadata(request: web.Request) -> web.Response:
    _check_model(request)
    return _json(protocol.metadata(request.match_info["name"]))


async def model_ready(request: web.Request) -> web.Response:
    _check_model(request)
    is_ready = request.app[STATE].ready
    return _json({"name": request.match_info["name"], "ready": is_ready}, 200 if is_ready else 503)


def _outcome(request: web.Request, kind: str, served: Served | None = None) -> None:
    """Count how a request ended in our own metrics and note it for a mimic's recorder."""
    request.app[STATE].metrics.requests.labels(kind if kind in OUTCOMES else "bad_request").inc()
    request[mimic_web.OUTCOME] = (kind, served)


async def infer(request: web.Request) -> web.Response:
    """``POST /v2/models/{name}/infer``: queue, serve, answer; latency from arrival."""
    arrived = time.perf_counter()
    _check_model(request)
    state = request.app[STATE]
    if state.draining:
        _outcome(request, "draining")
        return _error(503, "the server is shutting down", retry=True)
    if state.scheduler is None or state.model is None:
        _outcome(request, "not_ready")
        return _error(503, "the model is still loading", retry=True)
    state.active_requests += 1
    try:
        try:
            decoded = protocol.decode_infer(await request.read())
        except protocol.ProtocolError as error:
            _outcome(request, "bad_request")
            return _json(error.body(), error.status)
        try:
            if state.language_model is not None:
                served = await state.language_model.generate(state.scheduler)
                output = state.model.project(decoded.batch)
            else:
                output, waited, held = await state.scheduler.submit_timed(decoded.batch)
                served = Served(waited, held)
        except Shed as shed:
            _outcome(request, "shed")
            return _error(503, f"overloaded: {shed}", retry=True)
        body = protocol.encode_infer(state.config.model_name, decoded, output)
        response = _json(body)
        _served(request, arrived, served)
        return response
    finally:
        state.active_requests -= 1


def _served(request: web.Request, arrived: float, served: Served) -> None:
    state = request.app[STATE]
    seconds = time.perf_counter() - arrived
    if state.config.push.adapter_urls:  # only the push client drains the recorders
        state.recorder.observe(seconds)
        state.service_times.observe(served.compute_seconds)
    state.metrics.latency.observe(seconds)
    _outcome(request, "ok", served)


def _openai_error(error: openai.OpenAIError, retry: bool = False) -> web.Response:
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if retry else None
    return _json(error.body(), error.status, headers)


async def completions(request: web.Request) -> web.Response:
    """``POST /v1/completions`` (OpenAI): a language-model mimic generates the completion."""
    arrived = time.perf_counter()
    state = request.app[STATE]
    config = state.config
    if state.draining:
        _outcome(request, "draining")
        return _openai_error(openai.OpenAIError(503, "the server is shutting down"), retry=True)
    if state.scheduler is None or state.language_model is None:
        _outcome(request, "not_ready")
        return _openai_error(openai.OpenAIError(503, "the model is still loading"), retry=True)
    state.active_requests += 1
    try:
        try:
            decoded = openai.decode_completion(
                await request.read(), config.model_name, config.tokens.max_model_len
            )
        except openai.OpenAIError as error:
            _outcome(request, "not_found" if error.status == 404 else "bad_request")
            return _openai_error(error)
        try:
            served = await state.language_model.generate(
                state.scheduler, decoded.prompt_tokens, decoded.max_tokens
            )
        except Shed as shed:
            _outcome(request, "shed")
            return _openai_error(openai.OpenAIError(503, f"overloaded: {shed}"), retry=True)
        body = openai.encode_completion(
            request_id=f"cmpl-{uuid.uuid4().hex}",
            created=int(time.time()),
            model=config.model_name,
            prompt_tokens=served.prompt_tokens,
            completion_tokens=served.output_tokens,
            finish_reason=served.finish_reason,
        )
        response = _json(body)
        _served(request, arrived, served)
        return response
    finally:
        state.active_requests -= 1


async def metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if state.mimic is not None:
        return mimic_web.metrics_response(state.mimic, state.mimic_gauges())
    return web.Response(
        body=generate_latest(state.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


@web.middleware
async def errors_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    """Unknown paths and methods get a v2 ``{"error": ...}`` body; bugs are logged, answered 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        return _error(exc.status, f"{exc.reason}: {request.method} {request.path}")
    except Exception:
        logger.exception("unhandled error answering %s %s", request.method, request.path)
        _outcome(request, "error")
        return _error(500, "internal error")


def _executor(state: ModelServerState, model: Mlp) -> Any:
    """The work a slot does: a drawn sleep (simulated), the real network (compute), or token
    generation (a language-model mimic, whatever the mode)."""
    config = state.config
    mimic = state.mimic
    if mimic is not None and mimic.surface.llm:
        state.language_model = LanguageModel(
            config.tokens,
            np.random.default_rng(config.seed),
            on_admit=lambda: mimic.admit(state.mimic_gauges()),
        )
        return state.language_model.execute, None
    if config.mode == "compute":
        pool = concurrent.futures.ThreadPoolExecutor(config.max_concurrency, "model")

        async def compute(rows: np.ndarray, requests: int) -> np.ndarray:
            state.metrics.batch_size.observe(requests)
            return await asyncio.get_running_loop().run_in_executor(pool, model.forward, rows)

        return compute, pool
    sampler = ServiceTimeSampler(
        config.service_time, np.random.default_rng(config.seed), config.batch_growth
    )
    sleeper = PreciseSleeper()

    async def simulate(rows: np.ndarray, requests: int) -> np.ndarray:
        started = time.perf_counter()
        seconds = sampler.draw(requests)
        state.metrics.batch_size.observe(requests)
        state.metrics.service_time_drawn.inc(seconds)
        output = model.project(rows)
        # The slot is held for the drawn time in all: the sleep takes what the work left.
        await sleeper.sleep(max(0.0, seconds - (time.perf_counter() - started)))
        return output

    return simulate, None


async def model_context(app: web.Application) -> AsyncIterator[None]:
    """Load the weights off the event loop (liveness answers meanwhile), then start the slots."""
    state = app[STATE]
    config = state.config

    async def load_and_run() -> None:
        started = time.perf_counter()
        model = await asyncio.get_running_loop().run_in_executor(
            None, Mlp.load, config.model_size_mb, config.seed
        )
        state.load_seconds = time.perf_counter() - started
        logger.info(
            "loaded %.1f MiB of weights in %.2fs; ready",
            model.size_bytes / 2**20,
            state.load_seconds,
        )
        execute, pool = _executor(state, model)
        scheduler = Scheduler(
            execute,
            max_concurrency=config.max_concurrency,
            max_queue=config.max_queue,
            max_batch_size=config.max_batch_size,
            batch_timeout_seconds=config.batch_timeout_seconds,
        )
        state.model, state.scheduler = model, scheduler
        try:
            await scheduler.run()
        finally:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    async with background.running(load_and_run()):
        yield


async def push_context(app: web.Application) -> AsyncIterator[None]:
    """Push to every adapter each interval; one last push at shutdown."""
    state = app[STATE]
    config = state.config
    if not config.push.adapter_urls:
        yield
        return
    client = config.push.client(state.recorder, state.gauges, state.service_times)
    async with client:
        state.push_client = client
        try:
            async with background.running(client.run()):
                yield
        finally:
            try:
                await asyncio.wait_for(client.push_now(force=True), FINAL_PUSH_SECONDS)
            except TimeoutError:
                logger.warning("the final push did not finish within %ss", FINAL_PUSH_SECONDS)


def make_app(state: ModelServerState) -> web.Application:
    middlewares: list[Any] = [errors_as_json]
    if state.mimic is not None:
        middlewares.insert(0, mimic_web.recording(state.mimic))
    app = web.Application(middlewares=middlewares, client_max_size=4 * 1024 * 1024)
    app[STATE] = state
    app.router.add_get("/v2/health/live", live)
    app.router.add_get("/v2/health/ready", ready)
    app.router.add_get("/v2/models/{name}", model_metadata)
    app.router.add_get("/v2/models/{name}/ready", model_ready)
    app.router.add_post("/v2/models/{name}/infer", infer)
    app.router.add_get("/metrics", metrics)
    if state.mimic is not None:
        surface = state.mimic.surface
        if surface.llm:
            app.router.add_post("/v1/completions", completions)
        if surface.server == "tfserving":
            app.router.add_get("/monitoring/prometheus/metrics", metrics)
    app.cleanup_ctx.append(model_context)
    app.cleanup_ctx.append(push_context)
    return app


async def drain(state: ModelServerState, timeout_seconds: float) -> bool:
    """Refuse new work and wait for the queued and running requests; False on timeout."""
    state.draining = True
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        scheduler_idle = state.scheduler is None or state.scheduler.concurrency == 0
        if scheduler_idle and state.active_requests == 0:
            return True
        await asyncio.sleep(0.01)
    return False


async def serve(config: ModelServerConfig) -> None:
    """Serve until SIGTERM/SIGINT, then drain and push one last time."""
    state = ModelServerState(config)
    runner = web.AppRunner(
        make_app(state), handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    logger.info(
        "serving model %r on http://%s:%d (%s mode%s)",
        config.model_name,
        config.host,
        config.port,
        "token" if state.mimic is not None and state.mimic.surface.llm else config.mode,
        f", {config.mimic} metrics" if config.mimic else "",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    started = time.monotonic()
    logger.info("draining: readiness is false, new requests get 503")
    budget = config.drain_timeout_seconds - FINAL_PUSH_SECONDS - SHUTDOWN_SECONDS
    drained = await drain(state, max(0.0, budget))
    if not drained:
        logger.warning(
            "drain timeout: %d requests were still queued or running", state.active_requests
        )
    await runner.cleanup()
    logger.info("stopped after draining for %.2fs", time.monotonic() - started)
