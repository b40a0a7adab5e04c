"""pdfco-merge through the installed command, as a user runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.factories import make_pdf

REPO = Path(__file__).resolve().parents[1]
SAMPLES = sorted(REPO.glob("samples/0*"))
KEY = "cli-test-key"


def merge_command() -> list[str]:
    installed = Path(sys.executable).with_name("pdfco-merge")
    if installed.exists():
        return [str(installed)]
    return [sys.executable, "-m", "pdfco_tasks.cli"]


@pytest.fixture(scope="module")
def cli_env(prefect_harness: None) -> dict[str, str]:
    """Environment that points the command at the session's Prefect server."""
    from prefect.settings import PREFECT_API_URL

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PDFCO_", "PREFECT_"))
    }
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    return env


@pytest.fixture
def run_env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**cli_env, "PDFCO_TASKS_HOME": str(tmp_path / "state")}


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    """A pdfco-sandbox process that drops the last page of every merge."""
    command = [
        str(Path(sys.executable).with_name("pdfco-sandbox")),
        "--port",
        "0",
        "--api-key",
        KEY,
        "--faults",
        "drop-page:1.0",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def run_merge(
    args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*merge_command(), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.soffice
@pytest.mark.skipif(shutil.which("soffice") is None, reason="needs LibreOffice")
def test_samples_merge_with_sandbox(tmp_path: Path, run_env: dict[str, str]) -> None:
    output = tmp_path / "merged.pdf"

    done = run_merge(
        ["--sandbox", "-o", str(output), *map(str, SAMPLES)], run_env, tmp_path
    )

    assert done.returncode == 0, done.stderr
    assert f"Merged into {output}" in done.stdout
    assert "6 pages · job " in done.stdout
    assert len(PdfReader(output).pages) == 6
    assert "Traceback" not in done.stderr


def test_existing_output_exits_2(tmp_path: Path, run_env: dict[str, str]) -> None:
    source = make_pdf(tmp_path, "a.pdf", 1)
    output = tmp_path / "merged.pdf"
    output.write_bytes(b"old")

    done = run_merge(["--sandbox", "-o", str(output), str(source)], run_env, tmp_path)

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"pdfco-merge: Output {output} already exists; allow overwriting it "
        "(overwrite=True, or --overwrite on the command line) or choose another "
        "path."
    ]
    assert output.read_bytes() == b"old"


def test_bad_inputs_listed_exit_2(tmp_path: Path, run_env: dict[str, str]) -> None:
    good = make_pdf(tmp_path, "good.pdf", 1)
    webp = tmp_path / "photo.webp"
    webp.write_bytes(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
    output = tmp_path / "merged.pdf"

    done = run_merge(
        ["--sandbox", "-o", str(output), str(good), "missing.pdf", str(webp)],
        run_env,
        tmp_path,
    )

    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[0] == "pdfco-merge: 2 of 3 inputs cannot be merged:"
    assert lines[1].startswith("  missing.pdf: file not found")
    assert lines[2].startswith(f"  {webp}: PDF.co merge2 does not accept WEBP")
    assert "Traceback" not in done.stderr
    assert not output.exists()


def test_dropped_page_exits_3(
    tmp_path: Path, run_env: dict[str, str], sandbox_url: str
) -> None:
    first = make_pdf(tmp_path, "first.pdf", 2)
    second = make_pdf(tmp_path, "second.pdf", 3)
    output = tmp_path / "merged.pdf"
    env = {**run_env, "PDFCO_API_KEY": KEY}

    done = run_merge(
        ["--base-url", sandbox_url, "-o", str(output), str(first), str(second)],
        env,
        tmp_path,
    )

    assert done.returncode == 3
    assert "first.pdf: 2 pages" in done.stderr
    assert "second.pdf: 3 pages" in done.stderr
    assert f"Merged PDF for {output} has 4 pages" in done.stderr
    assert "Traceback" not in done.stderr
    assert not output.exists()
    kept = tmp_path / "merged.FAILED-VALIDATION.pdf"
    assert len(PdfReader(kept).pages) == 4


def test_missing_key_exits_2(
    tmp_path: Path, run_env: dict[str, str], sandbox_url: str
) -> None:
    source = make_pdf(tmp_path, "a.pdf", 1)

    done = run_merge(
        ["--base-url", sandbox_url, "-o", str(tmp_path / "o.pdf"), str(source)],
        run_env,
        tmp_path,
    )

    assert done.returncode == 2
    assert done.stderr.startswith("pdfco-merge: No PDF.co API key: set the ")
    assert "Traceback" not in done.stderr


def test_wrong_key_exits_1(
    tmp_path: Path, run_env: dict[str, str], sandbox_url: str
) -> None:
    source = make_pdf(tmp_path, "a.pdf", 1)
    env = {**run_env, "PDFCO_API_KEY": "not-the-key-9876"}

    done = run_merge(
        ["--base-url", sandbox_url, "-o", str(tmp_path / "o.pdf"), str(source)],
        env,
        tmp_path,
    )

    assert done.returncode == 1
    assert "401" in done.stderr
    assert "not-the-key-9876" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_base_url_without_v1_exits_2(
    tmp_path: Path, run_env: dict[str, str], sandbox_url: str
) -> None:
    source = make_pdf(tmp_path, "a.pdf", 1)
    origin = sandbox_url.removesuffix("/v1")
    env = {**run_env, "PDFCO_API_KEY": KEY}

    done = run_merge(
        ["--base-url", origin, "-o", str(tmp_path / "o.pdf"), str(source)],
        env,
        tmp_path,
    )

    assert done.returncode == 2
    assert "base_url must be the API root ending in /v1" in done.stderr


def test_ctrl_c_exits_130_then_resumes(tmp_path: Path, run_env: dict[str, str]) -> None:
    import json
    import signal
    import time
    import urllib.request

    sandbox = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("pdfco-sandbox")),
            "--port",
            "0",
            "--api-key",
            KEY,
            "--job-latency",
            "20",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert sandbox.stdout is not None
        url = sandbox.stdout.readline().strip()
        counters_url = url.removesuffix("/v1") + "/__sandbox/counters"
        source = make_pdf(tmp_path, "a.pdf", 2)
        output = tmp_path / "merged.pdf"
        options = ["--base-url", url, "-o", str(output), str(source)]
        env = {**run_env, "PDFCO_API_KEY": KEY}
        merge = subprocess.Popen(
            [*merge_command(), *options],
            env=env,
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            text=True,
        )

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with urllib.request.urlopen(counters_url, timeout=10) as response:
                counters = json.load(response)
            if counters["merge_submissions_total"] == 1:
                break
            time.sleep(0.5)
        merge.send_signal(signal.SIGINT)
        _, stderr = merge.communicate(timeout=60)

        assert merge.returncode == 130
        assert "Interrupted. A submitted PDF.co job is remembered" in stderr
        assert "Traceback" not in stderr
        assert not output.exists()

        done = run_merge(options, env, tmp_path)
        with urllib.request.urlopen(counters_url, timeout=10) as response:
            counters = json.load(response)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)

    assert done.returncode == 0, done.stderr
    assert "(resumed)" in done.stdout
    assert counters["merge_submissions_total"] == 1
    assert len(PdfReader(output).pages) == 2
