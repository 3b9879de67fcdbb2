"""Which addresses an adapter URL's host name stands for: every replica the push client delivers to.

A headless Service (``clusterIP: None``) resolves to the address of every adapter pod, one A or
AAAA record each, so ``adapter.client`` asks for all of them and pushes to each. ``DnsResolver``
asks the system resolver; ``StaticResolver`` answers fixed addresses for some names first, as
curl's ``--resolve`` does (``model-server --resolve``), for a machine without that DNS record.

Resolvers only resolve: TLS is still verified against the URL's name, never an address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol


class Resolver(Protocol):
    """Turns a host name into the addresses of the replicas behind it."""

    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address of ``host`` (IP literals, no brackets), without duplicates, sorted;
        raises ``OSError`` when the name does not resolve."""
        ...


def is_address(host: str) -> bool:
    """Whether ``host`` is an IP literal (which resolves to itself).

    >>> is_address("10.0.0.7"), is_address("fd00::7"), is_address("adapter.metrics.svc")
    (True, True, False)
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class DnsResolver:
    """The system resolver (``getaddrinfo``): every A and AAAA record of a name."""

    async def resolve(self, host: str, port: int) -> list[str]:
        if is_address(host):
            return [host]
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
        addresses = sorted({str(info[4][0]) for info in infos})
        if not addresses:
            raise OSError(f"{host} resolves to no address")
        return addresses


class StaticResolver:
    """Fixed addresses for the names in ``addresses``; any other name goes to ``fallback``."""

    def __init__(
        self, addresses: Mapping[str, Sequence[str]], fallback: Resolver | None = None
    ) -> None:
        self.addresses = {host.lower(): sorted(set(a)) for host, a in addresses.items()}
        self.fallback = fallback or DnsResolver()

    async def resolve(self, host: str, port: int) -> list[str]:
        fixed = self.addresses.get(host.lower().rstrip("."))
        if fixed is not None:
            return list(fixed)
        return await self.fallback.resolve(host, port)


def _address(text: str, entry: str) -> str:
    """One address of a ``--resolve`` entry, brackets removed; ValueError naming the entry."""
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        raise ValueError(f"invalid --resolve {entry!r}: {text!r} is not an IP address") from None


def parse_resolve(entries: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """``HOST:ADDR[,ADDR...]`` entries (as curl's ``--resolve``, without the port) into a map.

    Entries may also come joined by commas (an environment variable): a part that is an address
    continues the entry before it. IPv6 addresses may go in brackets. Raises ValueError naming
    the first bad entry.

    >>> parse_resolve(["adapter.metrics.svc:10.0.0.7,10.0.0.8", "other:[fd00::1]"])
    {'adapter.metrics.svc': ('10.0.0.7', '10.0.0.8'), 'other': ('fd00::1',)}
    >>> parse_resolve(["a:10.0.0.1,10.0.0.2,b:10.0.0.3"])
    {'a': ('10.0.0.1', '10.0.0.2'), 'b': ('10.0.0.3',)}
    """
    resolved: dict[str, list[str]] = {}
    host = None
    for entry in entries:
        for part in (p.strip() for p in entry.split(",")):
            if host is not None and (part.startswith("[") or is_address(part)):
                resolved[host].append(_address(part, entry))
                continue
            name, colon, address = part.partition(":")
            name = name.strip().lower().rstrip(".")
            if not colon or not name or is_address(name):
                raise ValueError(f"invalid --resolve {entry!r}: expected HOST:ADDR[,ADDR...]")
            if name in resolved:
                raise ValueError(f"invalid --resolve {entry!r}: {name} is given twice")
            host = name
            resolved[host] = [_address(address.strip(), entry)]
    return {name: tuple(addresses) for name, addresses in resolved.items()}
