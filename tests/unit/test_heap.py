"""``adapter.heap``: freed buffers are reused without a page fault per page, and a lot of free
heap is handed back to the kernel."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from adapter import heap

_FAULTS_OF_QUERY_TEMPORARIES = """
import resource, sys
from adapter import heap
if sys.argv[1] == "keep":
    assert heap.keep_freed_memory()
def touched(size):
    buffer = bytearray(size)
    buffer[::4096] = b"x" * len(buffer[::4096])
    return buffer
def query(i):  # as a 1,000-pod answer: joined bands, their cumulative sums, then the body
    joined = touched(700_000 + 8 * i)
    sums = touched(700_008 + 8 * i)
    del joined
    body = touched(250_000 + i)
    del sums, body
for i in range(3):
    query(i)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(3, 11):
    query(i)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _FAULTS_OF_QUERY_TEMPORARIES, mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(done.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt and thresholds")
def test_kept_memory_serves_query_temporaries_again_without_page_faults() -> None:
    pages = 8 * (700_000 + 700_000 + 250_000) // 4096  # touched by the 8 measured queries
    assert _faults("default") > pages / 2, "glibc reused the buffers anyway: nothing to show"
    assert _faults("keep") < pages / 20


def test_keep_freed_memory_says_whether_it_could(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_library(name: str) -> None:
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(heap.ctypes, "CDLL", no_library)
    assert heap.keep_freed_memory() is False


_BUFFERS_OF_CLOSED_CONNECTIONS = """
import json
from adapter import heap
heap.keep_freed_memory()
def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS"))
freed = heap.FreedMemory()
start = rss()
# 400 connections: asyncio's 256 KiB read buffer each, with the small objects of a connection
# allocated between them, so that no freed buffer lies at the top of the heap.
buffers, small = [], []
for _ in range(400):
    buffers.append(bytearray(256 * 1024))
    small.append([bytearray(64) for _ in range(20)])
small.append(bytearray(1024 * 1024))
held = rss()
idle = freed.release_if_grown()
del buffers
closed = rss()
released = freed.release_if_grown()
again = freed.release_if_grown()
print(json.dumps(dict(start=start, held=held, closed=closed, after=rss(),
                      idle=idle, released=released, again=again)))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc_trim")
def test_the_buffers_of_closed_connections_go_back_to_the_kernel() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _BUFFERS_OF_CLOSED_CONNECTIONS],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    report = json.loads(done.stdout)
    buffers = report["held"] - report["start"]
    assert buffers > 90 * 1024 * 1024, report
    assert not report["idle"], "nothing was freed yet"
    assert report["closed"] > report["held"] - buffers / 4, "freed memory stays (the finding)"
    assert report["released"] and not report["again"]
    assert report["after"] < report["start"] + buffers / 5, report
