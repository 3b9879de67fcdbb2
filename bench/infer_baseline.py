"""The model server's baseline: a bare aiohttp app answering KServe v2 infer requests.

``POST /v2/models/{name}/infer`` reads the body, ``json.loads`` it and answers ``--answer-file``
(the model server's own answer to the benchmark request, so the same number of bytes go back);
``GET /v2/health/ready`` answers 200. No middleware, no validation, no scheduler, no metrics and
no access log: the floor any aiohttp server pays to take a v2 request in and send its answer out.
Plain HTTP and the same event loop (``--event-loop``, default as the model server's), like the
model server.

Run: ``python -m bench.infer_baseline --port P --answer-file F``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aiohttp import web

from adapter import eventloop

ANSWER = web.AppKey("answer", bytes)


async def ready(request: web.Request) -> web.Response:
    return web.Response(body=b'{"ready":true}', content_type="application/json")


async def infer(request: web.Request) -> web.Response:
    document = json.loads(await request.read())
    if not isinstance(document, dict):
        return web.Response(status=400, text="not an object")
    return web.Response(body=request.app[ANSWER], content_type="application/json")


def make_app(answer: bytes) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[ANSWER] = answer
    app.router.add_get("/v2/health/ready", ready)
    app.router.add_post("/v2/models/{name}/infer", infer)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.infer_baseline")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--answer-file", type=Path, required=True)
    parser.add_argument("--event-loop", choices=eventloop.CHOICES, default=eventloop.default())
    args = parser.parse_args()
    web.run_app(
        make_app(args.answer_file.read_bytes()),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        shutdown_timeout=1,
        loop=eventloop.factory(args.event_loop)(),
    )


if __name__ == "__main__":
    main()
