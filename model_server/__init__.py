"""The simulated model-server pod and its load generator.

``model-server`` (:mod:`~model_server.app`) serves the Open Inference Protocol (KServe v2) with a
numpy model behind worker slots and a FIFO queue, sheds load, drains on SIGTERM, and pushes its
queue depth and latencies to every adapter replica with ``adapter.client``;
``model-server loadgen`` (:mod:`~model_server.loadgen`) drives it with open-loop arrivals.
"""
