"""``inference-adapter demo``: Ctrl-C stops it and every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (the demo's own output directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in command:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGKILL])
def test_interrupting_the_demo_leaves_nothing_running(tmp_path: Path, stop_signal: int) -> None:
    out = tmp_path / "demo-out"
    with subprocess.Popen(
        [sys.executable, "-m", "adapter", "demo", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as demo:
        try:
            assert demo.stdout is not None
            deadline = time.monotonic() + 60
            for line in demo.stdout:
                if " load " in line and " replicas " in line:  # the first sync line
                    break
                assert time.monotonic() < deadline, "the demo printed no sync line"
            started = processes_mentioning(str(out))
            assert len(started) >= 2, "the adapter and a model pod should be running"
            demo.send_signal(stop_signal)
            code = demo.wait(timeout=30)
        finally:
            if demo.poll() is None:
                demo.kill()
    assert code == (130 if stop_signal == signal.SIGINT else -signal.SIGKILL)
    deadline = time.monotonic() + 15
    while processes_mentioning(str(out)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_mentioning(str(out)) == []
