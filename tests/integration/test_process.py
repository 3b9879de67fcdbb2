"""The ``inference-adapter`` process: certificates on disk, rotation, logs and flag errors."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509

from adapter import certs
from tests.integration.conftest import (
    AdapterProcess,
    served_certificate,
    start_adapter,
    stop,
)

pytestmark = pytest.mark.integration


def test_generated_certificates_cover_the_service_and_are_reused(tmp_path: Path) -> None:
    first = start_adapter(tmp_path, "--service-name", "adapter", "--service-namespace", "obs")
    try:
        served = served_certificate(first.url, first.ca_file)
        assert (
            f"clients trust the serving certificate through the CA {first.ca_file}" in first.log()
        )
    finally:
        stop(first)
    san = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "adapter.obs.svc" in san.get_values_for_type(x509.DNSName)
    assert "localhost" in san.get_values_for_type(x509.DNSName)

    second = start_adapter(tmp_path, "--service-name", "adapter", "--service-namespace", "obs")
    try:
        again = served_certificate(second.url, second.ca_file)
    finally:
        stop(second)
    assert again.serial_number == served.serial_number
    assert "generated a serving certificate" not in second.log()


def test_replaced_certificate_files_are_served_to_new_connections(tmp_path: Path) -> None:
    now = datetime.datetime.now(datetime.UTC)
    ca = certs.load_or_make_ca(tmp_path / "certs", now)
    cert_file, key_file = tmp_path / "serving.crt", tmp_path / "serving.key"
    old = certs.make_serving_cert(ca, ["localhost", "127.0.0.1"], now)
    cert_file.write_bytes(old.cert_pem)
    key_file.write_bytes(old.key_pem)
    adapter = start_adapter(
        tmp_path, "--tls-cert-file", str(cert_file), "--tls-private-key-file", str(key_file)
    )
    try:
        before = served_certificate(adapter.url, adapter.ca_file)
        assert before.serial_number == x509.load_pem_x509_certificate(old.cert_pem).serial_number
        new = certs.make_serving_cert(ca, ["localhost", "127.0.0.1"], now)
        new_serial = x509.load_pem_x509_certificate(new.cert_pem).serial_number
        # Key first, then certificate: in between the pair does not match and must be refused.
        key_file.write_bytes(new.key_pem)
        cert_file.write_bytes(new.cert_pem)
        deadline = time.monotonic() + 10
        serials = []
        while time.monotonic() < deadline:
            serials.append(served_certificate(adapter.url, adapter.ca_file).serial_number)
            if serials[-1] == new_serial:
                break
            time.sleep(0.05)
        assert serials[-1] == new_serial, "the new certificate was never served"
        assert set(serials) <= {before.serial_number, new_serial}
        assert "reloaded the serving certificate" in adapter.log()
    finally:
        stop(adapter)


def test_json_access_log_has_one_line_per_request(tmp_path: Path) -> None:
    adapter = start_adapter(tmp_path, "--log-format", "json")
    try:
        served_certificate(adapter.url, adapter.ca_file)
        subprocess.run(
            [
                str(Path(sys.executable).parent / "kubectl"),
                "--kubeconfig",
                str(adapter.kubeconfig),
                "get",
                "--raw",
                "/apis/custom.metrics.k8s.io/v1beta2",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
    finally:
        stop(adapter)
    lines = [json.loads(line) for line in adapter.log().splitlines() if line.startswith("{")]
    assert lines, adapter.log()
    access = [line for line in lines if line["logger"] == "adapter.access"]
    discovery = [line for line in access if line["path"] == "/apis/custom.metrics.k8s.io/v1beta2"]
    assert len(discovery) == 1
    assert discovery[0]["status"] == 200
    assert discovery[0]["user"] == "alice"
    assert discovery[0]["method"] == "GET"
    assert isinstance(discovery[0]["duration_ms"], float)
    token = (adapter.cert_dir / "push-token").read_text().strip()
    assert token not in adapter.log()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--window", "30"], 'invalid duration "30": missing unit'),
        (["--max-age=-1s"], "must not be negative"),
        (["--max-age", "0s"], "--max-age must be positive"),
        (["--window", "100ms"], "--window must be at least 1s"),
        (["--tls-cert-file", "/nonexistent.crt"], "go together"),
        (["--push-token-file", "/nonexistent-token"], "no such file"),
        (["--log-format", "xml"], "invalid choice"),
    ],
)
def test_bad_flags_exit_with_one_clear_line(flags: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "adapter", "serve", *flags],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_client_certificate_command_refuses_a_bad_name(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "adapter", "certs", "client", "a/b", "--cert-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "invalid user name 'a/b'" in result.stderr


def test_sigterm_stops_the_server(adapter_process: AdapterProcess) -> None:
    adapter_process.process.terminate()
    assert adapter_process.process.wait(timeout=10) == 0
