"""Refused pushes in the log: at most one line per (reason, pusher) per minute.

A successful push writes no line (1,000 pods at 1 Hz would be 86 million lines a day); a refused
one is worth a line, but a broken pod refused every second, or a fleet shed in a storm, must not
flood the log. So the first refusal of a (reason, pusher) is logged at once, the following ones
within the minute are only counted, and the count is reported with the next line for that key,
or by ``expired`` once the minute is over without one. The table is bounded: past
``max_keys`` keys, refusals of new pushers count under one key per reason (``OTHER``).

Pure: time comes in as an argument; the caller writes the lines.
"""

from __future__ import annotations

INTERVAL_SECONDS = 60.0
MAX_KEYS = 10_000
OTHER = "other pushers"
"""The pusher that refusals of new pushers count under once the table is full."""


class RejectionLog:
    """Decides which refusals are logged, and counts the others."""

    def __init__(
        self, interval_seconds: float = INTERVAL_SECONDS, max_keys: int = MAX_KEYS
    ) -> None:
        self.interval_seconds = interval_seconds
        self._max_keys = max_keys
        self._keys: dict[tuple[str, str], tuple[float, int]] = {}
        """(reason, pusher) -> (when its last line was written, refusals not logged since)."""

    def __len__(self) -> int:
        return len(self._keys)

    def note(self, reason: str, pusher: str, now: float) -> tuple[str, int] | None:
        """One refusal at ``now``: None when it is only counted, else (the pusher to name, the
        refusals of that key not logged since its previous line) for a line to write now."""
        key = (reason, pusher)
        if key not in self._keys and len(self._keys) >= self._max_keys:
            key = (reason, OTHER)
        entry = self._keys.get(key)
        if entry is not None and now - entry[0] < self.interval_seconds:
            self._keys[key] = (entry[0], entry[1] + 1)
            return None
        self._keys[key] = (now, 0)
        return key[1], entry[1] if entry is not None else 0

    def expired(self, now: float) -> list[tuple[str, str, int]]:
        """Forget the keys whose minute is over; (reason, pusher, refusals not logged) of those
        that counted any, for a closing line each."""
        ended = [
            key for key, (logged, _) in self._keys.items() if now - logged >= self.interval_seconds
        ]
        closing = []
        for key in ended:
            suppressed = self._keys.pop(key)[1]
            if suppressed:
                closing.append((*key, suppressed))
        return closing
