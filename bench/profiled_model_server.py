"""The model server under cProfile, CPU clock: ``python -m bench.profiled_model_server OUT ARGS``.

``ARGS`` are ``model_server`` command-line arguments. On SIGTERM the server drains and exits as
usual, and the profile (CPU time, so time spent preempted by other work is not charged to whatever
function was running) is written to ``OUT``.
"""

from __future__ import annotations

import cProfile
import sys
import time

from model_server.__main__ import main as model_server_main


def main() -> None:
    out, argv = sys.argv[1], sys.argv[2:]
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    try:
        model_server_main(argv)
    finally:
        profiler.disable()
        profiler.dump_stats(out)


if __name__ == "__main__":
    main()
