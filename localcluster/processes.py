"""Child processes that cannot outlive the local cluster.

``die_with_parent`` is a ``preexec_fn`` asking Linux to send SIGTERM to the child when the
process that started it exits, however it exits (even SIGKILL), so an interrupted demo leaves
nothing running. The kernel ties this to the starting *thread*, so only call ``Popen`` with it
from the main thread.
"""

from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent goes away."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
