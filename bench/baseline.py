"""The baseline server: a bare aiohttp app over the adapter's own TLS context.

``POST /push/v1`` reads the body, ``json.loads`` it and answers a small JSON body;
``GET /static`` answers a pre-built body read from ``--body-file`` at start. No middlewares, no
validation, no store and no logging: what the same work costs with nothing of ours around it.
The TLS context is ``adapter.transport.ServingTls`` over the same certificate, key and client CA,
so the handshake and record layer are the same as the adapter's.

Run: ``python -m bench.baseline --port P --cert-dir DIR [--body-file F]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aiohttp import web

from adapter import certs
from adapter.transport import ServingTls

ACCEPTED = b'{"accepted":true}'
STATIC_BODY = web.AppKey("static_body", bytes)


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def push(request: web.Request) -> web.Response:
    document = json.loads(await request.read())
    if not isinstance(document, dict):
        return web.Response(status=400, text="not an object")
    return web.Response(body=ACCEPTED, content_type="application/json")


async def static(request: web.Request) -> web.Response:
    return web.Response(body=request.app[STATIC_BODY], content_type="application/json")


def make_app(static_body: bytes) -> web.Application:
    app = web.Application(client_max_size=256 * 1024)
    app[STATIC_BODY] = static_body
    app.router.add_get("/healthz", health)
    app.router.add_post("/push/v1", push)
    app.router.add_get("/static", static)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert-dir", type=Path, required=True)
    parser.add_argument("--body-file", type=Path)
    args = parser.parse_args()
    tls = ServingTls(
        args.cert_dir / certs.SERVING_CERT_FILE,
        args.cert_dir / certs.SERVING_KEY_FILE,
        args.cert_dir / certs.CA_CERT_FILE,
    )
    static_body = args.body_file.read_bytes() if args.body_file else b"{}"
    web.run_app(
        make_app(static_body),
        host="127.0.0.1",
        port=args.port,
        ssl_context=tls.context,
        access_log=None,
        print=None,
        shutdown_timeout=1,
    )


if __name__ == "__main__":
    main()
