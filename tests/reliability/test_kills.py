"""SIGKILL faults: the adapter killed and restarted, a model pod killed.

One adapter and two real ``model_server`` pods pushing every second serve both tests. Times are
measured against the adapter's own answers to the pod-by-name URL, polled over a kept-alive
connection.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.integration.conftest import (
    AdapterProcess,
    ModelServerProcess,
    metric_value,
    restart_adapter,
    start_adapter,
    start_model_pods,
    stop,
)
from tests.reliability.conftest import ApiReader, log_problems

pytestmark = pytest.mark.integration

NAMESPACE = "faults"
PODS = ("model-6f9c7d-aaaaa", "model-6f9c7d-bbbbb")
PUSH_INTERVAL = 1.0
MAX_AGE = 3.0
POLL = 0.02
MEASURING = 0.1
"""What the measurement adds to a time-to-served: a pod counts as served when the poll that saw
it returns (poll period plus the query's own time), and the pods' event loops on a busy
machine; far below the push interval the bound is about."""
DELIVERED = 'model_server_pushes_total{result="delivered"}'
FAILED = 'model_server_pushes_total{result="failed"}'


@dataclass
class Fleet:
    """The adapter (replaced when restarted) and the pods pushing to it."""

    adapter: AdapterProcess
    pods: dict[str, ModelServerProcess]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("kills")
    adapter = start_adapter(tmp, f"--max-age={MAX_AGE:g}s", "--window=5s")
    token = tmp / "push-token"
    token.write_text(adapter.token)

    fleet = Fleet(adapter, {})
    try:
        fleet.pods = start_model_pods(
            tmp,
            NAMESPACE,
            PODS,
            f"--adapter-url={adapter.url}",
            f"--adapter-ca-file={adapter.ca_file}",
            f"--push-token-file={token}",
            f"--push-interval={PUSH_INTERVAL:g}s",
        )
        with ApiReader(adapter) as reader:
            wait_until_served(reader, PODS, time.monotonic(), 10 * PUSH_INTERVAL)
        yield fleet
    finally:
        for pod in fleet.pods.values():  # disposable: no drain to wait for
            pod.process.kill()
            pod.process.wait()
        stop(fleet.adapter)


def wait_until_served(
    reader: ApiReader, pods: tuple[str, ...], since: float, timeout: float
) -> dict[str, float]:
    """Seconds from ``since`` (monotonic) until each pod was seen served; fails naming the pods
    not served within ``timeout`` of it."""
    served: dict[str, float] = {}
    while len(served) < len(pods):
        assert time.monotonic() - since < timeout, f"not served within {timeout:g}s: {pods}"
        for pod in pods:
            if pod not in served and reader.pod_served(NAMESPACE, pod):
                served[pod] = time.monotonic() - since
        time.sleep(POLL)
    return served


def test_adapter_killed_and_restarted_serves_every_live_pod_within_two_intervals(
    fleet: Fleet,
) -> None:
    pids = {name: pod.process.pid for name, pod in fleet.pods.items()}
    failed_before = {name: metric_value(pod.url, FAILED) for name, pod in fleet.pods.items()}
    fleet.adapter.process.kill()
    fleet.adapter.process.wait()
    time.sleep(PUSH_INTERVAL / 2)  # with the restart, an outage every pusher runs into

    fleet.adapter = restart_adapter(fleet.adapter)
    # From the adapter's first answer; polling starts a little later, so a pod found served at
    # once is counted with that whole gap, which only makes the measurement stricter.
    with ApiReader(fleet.adapter) as reader:
        served = wait_until_served(reader, PODS, fleet.adapter.answering_since, 4 * PUSH_INTERVAL)
    print(f"served again, seconds after the restarted adapter answered: {served}")
    assert max(served.values()) <= 2 * PUSH_INTERVAL + MEASURING, served
    for name, pod in fleet.pods.items():
        assert pod.process.poll() is None and pod.process.pid == pids[name]
        assert metric_value(pod.url, FAILED) > failed_before[name], "the pod never saw the outage"
    assert log_problems(fleet.adapter.log_file) == []


def test_killed_pod_stops_being_served_after_max_age(fleet: Fleet) -> None:
    victim_name, victim = PODS[-1], fleet.pods[PODS[-1]]
    with ApiReader(fleet.adapter) as reader:
        assert reader.pod_served(NAMESPACE, victim_name)
        before_push, after_push = kill_right_after_a_push(victim)
        del fleet.pods[victim_name]
        last_served = after_push
        while reader.pod_served(NAMESPACE, victim_name):
            last_served = time.monotonic()
            assert last_served - after_push < MAX_AGE + 3, "the killed pod is still served"
            time.sleep(POLL)
        stopped = time.monotonic()
        others_served = all(reader.pod_served(NAMESPACE, name) for name in fleet.pods)
    # The last push landed in (before_push, after_push]; the pod was served until at least
    # last_served, and no longer at stopped.
    served_at_least, served_at_most = last_served - after_push, stopped - before_push
    print(
        f"killed pod served {served_at_least:.3f}..{served_at_most:.3f}s after its last push"
        f" (max age {MAX_AGE:g}s)"
    )
    assert served_at_least >= PUSH_INTERVAL
    assert served_at_most <= MAX_AGE + 1
    assert others_served


def kill_right_after_a_push(pod: ModelServerProcess) -> tuple[float, float]:
    """SIGKILL the pod just after a push lands; returns the monotonic times between which it
    landed (the pod's own delivered counter, polled, brackets it)."""
    before_push = waiting_since = time.monotonic()
    delivered = metric_value(pod.url, DELIVERED)
    while True:
        polled_at = time.monotonic()
        if metric_value(pod.url, DELIVERED) != delivered:
            break
        before_push = polled_at
        assert polled_at - waiting_since < 3 * PUSH_INTERVAL, "the pod stopped pushing"
    after_push = time.monotonic()
    pod.process.kill()
    pod.process.wait()
    return before_push, after_push
