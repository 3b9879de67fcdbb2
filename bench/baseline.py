"""The baseline server: a bare aiohttp app over the adapter's own TLS context.

``POST /push/v1`` reads the body, decodes it with the adapter's JSON library (``msgspec``,
untyped: a parse without validation) and answers a small JSON body;
``GET /static/{name}`` answers the pre-built body that ``--body name=FILE`` read at start (one per
query the adapter is compared on, so one baseline process serves them all). No middlewares, no
validation, no store and no logging: what the same work costs with nothing of ours around it.
The TLS context is ``adapter.transport.ServingTls`` over the same certificate, key and client CA,
so the handshake and record layer are the same as the adapter's; it runs on the adapter's event
loop (``--event-loop``, the adapter's default: uvloop where it imports) and keeps freed heap
memory as the adapter's does (``adapter.heap``). Same stack, so the ratio measures our own work,
never a library choice.

Run: ``python -m bench.baseline --port P --cert-dir DIR [--body NAME=FILE ...]
[--event-loop uvloop|asyncio]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import msgspec
from aiohttp import web

from adapter import certs, eventloop, heap
from adapter.transport import ServingTls

ACCEPTED = b'{"accepted":true}'
STATIC_BODIES = web.AppKey("static_bodies", dict[str, bytes])


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def push(request: web.Request) -> web.Response:
    document = msgspec.json.decode(await request.read())
    if not isinstance(document, dict):
        return web.Response(status=400, text="not an object")
    return web.Response(body=ACCEPTED, content_type="application/json")


async def static(request: web.Request) -> web.Response:
    body = request.app[STATIC_BODIES].get(request.match_info["name"])
    if body is None:
        raise web.HTTPNotFound()
    return web.Response(body=body, content_type="application/json")


def make_app(static_bodies: dict[str, bytes]) -> web.Application:
    """The bare app: health, push (parse only) and the pre-built bodies by name."""
    app = web.Application(client_max_size=256 * 1024)
    app[STATIC_BODIES] = static_bodies
    app.router.add_get("/healthz", health)
    app.router.add_post("/push/v1", push)
    app.router.add_get("/static/{name}", static)
    return app


def _named_file(text: str) -> tuple[str, Path]:
    name, _, path = text.partition("=")
    if not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE, not {text!r}")
    return name, Path(path)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert-dir", type=Path, required=True)
    parser.add_argument(
        "--body", type=_named_file, action="append", default=[], help="NAME=FILE, repeatable"
    )
    parser.add_argument("--event-loop", choices=eventloop.CHOICES, default=eventloop.default())
    args = parser.parse_args()
    heap.keep_freed_memory()  # as the adapter does: the comparison is of the work, not malloc
    tls = ServingTls(
        args.cert_dir / certs.SERVING_CERT_FILE,
        args.cert_dir / certs.SERVING_KEY_FILE,
        args.cert_dir / certs.CA_CERT_FILE,
    )
    web.run_app(
        make_app({name: path.read_bytes() for name, path in args.body}),
        host="127.0.0.1",
        port=args.port,
        ssl_context=tls.context,
        access_log=None,
        print=None,
        shutdown_timeout=1,
        loop=eventloop.factory(args.event_loop)(),
    )


if __name__ == "__main__":
    main()
