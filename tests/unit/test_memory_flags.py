"""The memory budgets of ``serve``: the container's limit read from cgroup v1 and v2 files laid
out as the kernel and container runtimes lay them out, and the flags that override it."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter import memorylimit
from adapter.__main__ import build_parser, server_config
from adapter.config import StoreConfig

MI = 1024 * 1024


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize(
    ("self_cgroup", "files", "limit"),
    [
        # v2 in a container with its own cgroup namespace: the mount is the container's cgroup
        ("0::/\n", {"memory.max": "536870912\n"}, 512 * MI),
        ("0::/\n", {"memory.max": "max\n"}, None),
        # v2 without a namespace: the pod's limit (an ancestor) is smaller than the container's
        (
            "0::/kubepods/pod1/ctr\n",
            {
                "kubepods/memory.max": "max",
                "kubepods/pod1/memory.max": str(256 * MI),
                "kubepods/pod1/ctr/memory.max": str(512 * MI),
            },
            256 * MI,
        ),
        # v2, the path of /proc/self/cgroup absent under the mount: the mount's own file
        ("0::/kubepods/pod1/ctr\n", {"memory.max": str(300 * MI)}, 300 * MI),
        # v1: the effective limit from memory.stat, or the container's own file
        (
            "12:cpu,cpuacct:/x\n4:memory:/kubepods/pod1/ctr\n0::/\n",
            {
                "memory/kubepods/pod1/ctr/memory.stat": (
                    f"cache 0\nhierarchical_memory_limit {128 * MI}\n"
                ),
                "memory/kubepods/pod1/ctr/memory.limit_in_bytes": str(512 * MI),
            },
            128 * MI,
        ),
        ("4:memory:/docker/abc\n", {"memory/memory.limit_in_bytes": str(64 * MI)}, 64 * MI),
        ("4:memory:/\n", {"memory/memory.limit_in_bytes": "9223372036854771712"}, None),
        ("", {}, None),
    ],
    ids=[
        "v2-container",
        "v2-unlimited",
        "v2-ancestor",
        "v2-namespaced-path",
        "v1-hierarchical",
        "v1-container",
        "v1-unlimited",
        "none",
    ],
)
def test_memory_limit(tmp_path: Path, self_cgroup: str, files: dict[str, str], limit: int) -> None:
    write(tmp_path / "sys", files)
    (tmp_path / "cgroup").write_text(self_cgroup)
    assert memorylimit.memory_limit_bytes(tmp_path / "sys", tmp_path / "cgroup") == limit


def test_memory_limit_without_proc_files(tmp_path: Path) -> None:
    assert memorylimit.memory_limit_bytes(tmp_path, tmp_path / "missing") is None


def store_config(*flags: str, memory_bytes: int = 512 * MI) -> StoreConfig:
    args = build_parser().parse_args(["serve", *flags])
    return server_config(args, {}, memory_bytes).store


def test_budgets_default_to_half_the_memory_and_a_pod_budget_for_the_window() -> None:
    config = store_config()
    assert config.total_budget_bytes == 256 * MI
    assert config.pod_budget_bytes == MI
    assert store_config("--window=5m").pod_budget_bytes == 64 * 1024 + 32 * 1024 * 300


def test_budget_flags_take_quantities() -> None:
    config = store_config("--pod-memory-budget=256Ki", "--store-memory-budget=1G")
    assert (config.pod_budget_bytes, config.total_budget_bytes) == (256 * 1024, 10**9)
    assert store_config("--store-memory-budget=auto").total_budget_bytes == 256 * MI


@pytest.mark.parametrize("value", ["-1Mi", "0", "1.5", "lots"])
def test_budget_flags_refuse_what_is_not_a_number_of_bytes(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", f"--pod-memory-budget={value}"])
    assert "--pod-memory-budget" in capsys.readouterr().err


def test_budgets_too_small_for_the_largest_report_are_refused() -> None:
    args = build_parser().parse_args(
        ["serve", "--pod-memory-budget=16Ki", "--store-memory-budget=8Ki"]
    )
    problems = server_config(args, {}, 512 * MI).validate()
    assert any("--pod-memory-budget must be at least 64Ki" in p for p in problems)
    assert any("--store-memory-budget must be at least" in p for p in problems)
