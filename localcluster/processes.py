"""Child processes of the local cluster: started so they cannot outlive it, awaited, stopped.

``die_with_parent`` is a ``preexec_fn`` asking Linux to send SIGTERM to the child when the
process that started it exits, however it exits (even SIGKILL), so an interrupted demo leaves
nothing running. The kernel ties this to the starting *thread*, so only call ``Popen`` with it
from the main thread.
"""

from __future__ import annotations

import ctypes
import signal
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent goes away."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def wait_until_answering(
    url: str,
    process: subprocess.Popen,
    *,
    ca_file: Path | None = None,
    verify_name: bool = True,
    timeout_seconds: float = 30,
    poll_seconds: float = 0.1,
) -> None:
    """Poll ``url`` until it answers 2xx; fail at once if ``process`` exits, or at the timeout.

    For HTTPS, ``ca_file`` is the CA to trust; until the file exists (a server that generates
    its own CA writes it at start-up) the server counts as not answering yet. Without
    ``verify_name`` the certificate must chain to the CA but need not name the URL's host (a
    replica listening on an address its certificate does not carry).
    """
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process serving {url} exited with {process.returncode}")
        if ca_file is None or ca_file.exists():
            context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
            if context is not None:
                context.check_hostname = verify_name
            try:
                with urllib.request.urlopen(url, context=context, timeout=1):  # noqa: S310
                    return
            except OSError:
                pass
        time.sleep(poll_seconds)
    raise TimeoutError(f"{url} did not answer within {timeout_seconds:g}s")


def stop(process: subprocess.Popen, grace_seconds: float = 10) -> int:
    """SIGTERM, then SIGKILL if it outlives ``grace_seconds``; returns the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()
