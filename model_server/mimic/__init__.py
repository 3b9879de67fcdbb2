"""Real inference servers' Prometheus surfaces: the facts read at their source, and a simulation
that writes them.

``surfaces`` is the table (names, types, units, labels, buckets, flags, versions, citations);
``exposition`` writes a snapshot the way each server's client library does; ``recorder`` turns
the model server's requests into those families. ``model-server --mimic NAME`` serves the result.
"""

from model_server.mimic.surfaces import SERVERS, Family, Source, Surface, surface

__all__ = ["SERVERS", "Family", "Source", "Surface", "surface"]
