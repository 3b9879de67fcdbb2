"""Our adapter under cProfile with a CPU-time clock: ``python -m bench.profiled_adapter OUT ARGS``.

``ARGS`` are ``adapter`` command-line arguments (``serve ...``). On SIGTERM the server shuts down
as usual, and the profile (CPU time, not wall time, so time spent preempted by other work on the
machine is not charged to whatever function was running) is written to ``OUT``.
"""

from __future__ import annotations

import cProfile
import sys
import time

from adapter.__main__ import main as adapter_main


def main() -> None:
    out, argv = sys.argv[1], sys.argv[2:]
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    try:
        adapter_main(argv)
    finally:
        profiler.disable()
        profiler.dump_stats(out)


if __name__ == "__main__":
    main()
