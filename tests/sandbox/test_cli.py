"""The pdfco-sandbox command, and the vendor-sample client run against it."""

from __future__ import annotations

import io
import os
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from pypdf import PdfReader

from tests.sandbox.inputs import docx_bytes, pdf_bytes

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 30


def sandbox_command() -> list[str]:
    """Return the installed `pdfco-sandbox` script, or the module as a fallback."""
    script = Path(sys.executable).parent / "pdfco-sandbox"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "pdfco_tasks.sandbox.cli"]


def baseline_script() -> Path:
    """Return the vendor-sample merge script beside the repository."""
    configured = os.environ.get("PDFCO_BASELINE_SCRIPT")
    if configured:
        return Path(configured)
    return REPO_ROOT / ".." / "shared" / "baseline" / "seed_style_merge.py"


@contextmanager
def running_cli(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start `pdfco-sandbox ARGS`, yield the process and its base URL, stop it."""
    process = subprocess.Popen(
        [*sandbox_command(), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT_SECONDS)
        assert ready, "pdfco-sandbox printed no base URL"
        yield process, process.stdout.readline().strip()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class TestCommand:
    def test_prints_base_url_and_serves(self) -> None:
        with running_cli("--api-key", "K1", "--api-key", "K2", "--credits", "50") as (
            _,
            base_url,
        ):
            first = requests.get(
                base_url + "/account/credit/balance",
                headers={"x-api-key": "K1"},
                timeout=30,
            )
            second = requests.get(
                base_url + "/account/credit/balance",
                headers={"x-api-key": "K2"},
                timeout=30,
            )

        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v1")
        assert first.json()["remainingCredits"] == 50
        assert second.status_code == 200

    def test_sigterm_stops_and_removes_data(self) -> None:
        with running_cli("--api-key", "K") as (process, base_url):
            requests.get(
                base_url + "/file/upload/get-presigned-url",
                params={"name": "a.pdf"},
                headers={"x-api-key": "K"},
                timeout=30,
            )
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
            assert process.stderr is not None
            log = process.stderr.read()

        data_dir = log.split("data directory ", 1)[1].split()[0]
        assert not Path(data_dir).exists()
        assert "GET /v1/file/upload/get-presigned-url -> 200" in log
        assert "X-Amz-Signature" not in log
        assert "x-api-key" not in log.lower()

    def test_sigint_stops(self) -> None:
        with running_cli() as (process, _):
            process.send_signal(signal.SIGINT)

            assert process.wait(timeout=30) == 0

    def test_flags_reach_the_server(self) -> None:
        args = ("--api-key", "K", "--errors-as-200", "--faults", "503:1")
        with running_cli(*args) as (_, base_url):
            response = requests.get(
                base_url + "/account/credit/balance",
                headers={"x-api-key": "K"},
                timeout=30,
            )

        assert response.status_code == 200
        assert response.json()["status"] == 503

    def test_invalid_faults_exit_2(self) -> None:
        result = subprocess.run(
            [*sandbox_command(), "--faults", "boom:1"],
            capture_output=True,
            text=True,
            timeout=60,
        )

        assert result.returncode == 2
        assert "unknown fault 'boom:1'" in result.stderr

    def test_port_in_use_exit_2(self) -> None:
        with running_cli() as (_, base_url):
            port = base_url.rsplit(":", 1)[1].split("/")[0]
            result = subprocess.run(
                [*sandbox_command(), "--port", port],
                capture_output=True,
                text=True,
                timeout=60,
            )

        assert result.returncode == 2
        assert "Address already in use" in result.stderr


@pytest.mark.soffice
def test_vendor_sample_merges_pdf_and_docx(tmp_path: Path) -> None:
    script = baseline_script()
    if not script.is_file():
        pytest.skip(
            f"vendor-sample script not found at {script}; set "
            "PDFCO_BASELINE_SCRIPT to its path"
        )
    if shutil.which("soffice") is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    (tmp_path / "a.pdf").write_bytes(pdf_bytes(3))
    (tmp_path / "b.docx").write_bytes(docx_bytes(2))
    output = tmp_path / "out.pdf"

    with running_cli("--api-key", "KEY") as (_, base_url):
        result = subprocess.run(
            [sys.executable, str(script), str(output), "a.pdf", "b.docx"],
            cwd=tmp_path,
            env={**os.environ, "PDFCO_BASE_URL": base_url, "PDFCO_API_KEY": "KEY"},
            capture_output=True,
            text=True,
            timeout=300,
        )

    assert result.returncode == 0, result.stderr
    assert len(PdfReader(io.BytesIO(output.read_bytes())).pages) == 3 + 2


class TestOptionValues:
    """Bad option values exit 2 with an argparse message instead of a traceback."""

    @pytest.mark.parametrize("port", ["-1", "65536", "99999"])
    def test_port_out_of_range(self, port: str) -> None:
        result = run_cli(f"--port={port}")

        assert result.returncode == 2
        assert f"argument --port: port must be 0-65535, not {port}" in result.stderr
        assert "Traceback" not in result.stderr

    def test_port_not_integer(self) -> None:
        result = run_cli("--port", "http")

        assert result.returncode == 2
        assert "port must be an integer 0-65535, not 'http'" in result.stderr

    @pytest.mark.parametrize(
        "option", ["--clock-offset", "--job-latency", "--sync-budget"]
    )
    @pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1"])
    def test_seconds_must_be_finite(self, option: str, value: str) -> None:
        result = run_cli(f"{option}={value}")

        assert result.returncode == 2
        expected = f"argument {option}: must be a finite number of seconds >= 0"
        assert expected in result.stderr
        assert f"not '{value}'" in result.stderr

    @pytest.mark.parametrize("value", ["nan", "inf", "0", "-2"])
    def test_rate_limit_must_be_finite(self, value: str) -> None:
        result = run_cli(f"--rate-limit={value}")

        assert result.returncode == 2
        expected = "argument --rate-limit: must be a finite number of requests"
        assert expected in result.stderr
        assert "omit --rate-limit to turn limiting off" in result.stderr


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `pdfco-sandbox ARGS` to completion; bad options end it at once."""
    return subprocess.run(
        [*sandbox_command(), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
