"""Every sandbox fault kind through `merge_documents` on the real Prefect engine.

Each case ends either in a valid merged PDF or in the documented error, and
leaves nothing but the expected files in the output directory. The sandbox's
fault generator is seeded: with seed 3 the first draw is 0.24, so a fault of
rate 0.3 or more fires on the first request it applies to.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from pypdf import PdfReader

from flows.merge_documents import merge_documents
from pdfco_tasks.credentials import PdfcoCredentials
from pdfco_tasks.exceptions import (
    DownloadError,
    JobFailedError,
    PdfcoError,
    RateLimitedError,
    ServerError,
    ServerTimeoutError,
    TransportError,
    ValidationError,
)
from pdfco_tasks.sandbox import Sandbox
from tests.factories import make_pdf

API_KEY = "matrix-key"
SEED = 3
RETRY_ATTEMPTS = 10
SLOW_SECONDS = 0.2
JOB_ID = r"[A-Z0-9]{32}--\d+-\d+"
EXPECTED_PAGES = 5
OUTPUT_NAME = "merged.pdf"


@dataclass(frozen=True)
class Recovered:
    """A fault the flow rides through: one merge job and a valid output."""

    faults: str


@dataclass(frozen=True)
class Fails:
    """A fault that ends the run with `error` whose message matches `message`.

    Attributes:
        faults: The sandbox fault specification.
        error: The exception type the flow raises.
        message: A regex searched in the message, where `{job}` is replaced by
            the id of the job that the sandbox logged.
        merges: Merge submissions the sandbox accepted.
        leftovers: Files expected in the output directory afterwards.
        job_runs: Whether the sandbox runs the submitted job.
    """

    faults: str
    error: type[PdfcoError]
    message: str
    merges: int
    leftovers: tuple[str, ...] = ()
    job_runs: bool = True


RECOVERED = [
    pytest.param(Recovered("429:0.3"), id="429-recovers"),
    pytest.param(Recovered("500:0.3"), id="500-recovers"),
    pytest.param(Recovered("503:0.3"), id="503-recovers"),
    pytest.param(Recovered("error200:0.3"), id="error200-recovers"),
    pytest.param(Recovered("reset:0.3"), id="reset-recovers"),
    pytest.param(Recovered("slow:1.0"), id="slow-every-call"),
    pytest.param(Recovered("408:0.5"), id="408-on-merge-resent"),
    pytest.param(Recovered("445:0.5"), id="445-on-merge-resent"),
    pytest.param(Recovered("truncate:0.5"), id="truncate-half-downloads"),
]

GAVE_UP = rf"gave up after {RETRY_ATTEMPTS} attempts"

FAILS = [
    pytest.param(
        Fails(
            "job-failed:1.0",
            JobFailedError,
            r"PDF.co merge job {job} ended failed \(error code 442\): Input "
            r"first.pdf is damaged",
            merges=1,
        ),
        id="job-failed",
    ),
    pytest.param(
        Fails(
            "job-aborted:1.0",
            JobFailedError,
            r"PDF.co merge job {job} ended aborted: The job was aborted",
            merges=1,
        ),
        id="job-aborted",
    ),
    pytest.param(
        Fails(
            "job-unknown:1.0",
            JobFailedError,
            r"PDF.co does not know job {job}; it may have expired or never existed",
            merges=1,
            job_runs=False,
        ),
        id="job-unknown-force-checked",
    ),
    pytest.param(
        Fails(
            "drop-page:1.0",
            ValidationError,
            r"first.pdf: 3 pages.*second.pdf: 2 pages",
            merges=1,
            leftovers=("merged.FAILED-VALIDATION.pdf",),
        ),
        id="drop-page",
    ),
    pytest.param(
        Fails(
            "truncate:1.0",
            DownloadError,
            rf"The download of http://127\.0\.0\.1:\d+/{{job}}/merged\.pdf "
            rf"stopped after \d+ of \d+ bytes.*{GAVE_UP}",
            merges=1,
        ),
        id="truncate-every-download",
    ),
    pytest.param(
        Fails(
            "429:1.0",
            RateLimitedError,
            rf"PDF.co rate limit reached \(HTTP 429 from GET /v1/file/upload/"
            rf"get-presigned-url\).*{GAVE_UP}",
            merges=0,
        ),
        id="429-every-call",
    ),
    pytest.param(
        Fails(
            "503:1.0",
            ServerError,
            rf"PDF.co failed \(HTTP 503 from GET /v1/file/upload/"
            rf"get-presigned-url\).*{GAVE_UP}",
            merges=0,
        ),
        id="503-every-call",
    ),
    pytest.param(
        Fails(
            "error200:1.0",
            ServerError,
            r"PDF.co failed \(status 500 in an HTTP 200 response from GET "
            rf"/v1/file/upload/get-presigned-url\).*{GAVE_UP}",
            merges=0,
        ),
        id="error200-every-call",
    ),
    pytest.param(
        Fails(
            "reset:1.0",
            TransportError,
            r"GET http://127\.0\.0\.1:\d+/v1/file/upload/get-presigned-url failed: "
            rf"connection reset.*{GAVE_UP}",
            merges=0,
        ),
        id="reset-every-call",
    ),
    pytest.param(
        Fails(
            "408:1.0",
            ServerTimeoutError,
            rf"PDF.co timed out \(HTTP 408 from POST /v1/pdf/merge2\).*{GAVE_UP}",
            merges=0,
        ),
        id="408-every-merge",
    ),
    pytest.param(
        Fails(
            "445:1.0",
            ServerTimeoutError,
            rf"PDF.co timed out \(HTTP 445 from POST /v1/pdf/merge2\).*{GAVE_UP}",
            merges=0,
        ),
        id="445-every-merge",
    ),
]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(api_keys=(API_KEY,), slow_seconds=SLOW_SECONDS) as server:
        yield server


@pytest.fixture
def credentials(sandbox: Sandbox, state_dir: Path) -> PdfcoCredentials:
    return PdfcoCredentials(
        api_key=SecretStr(API_KEY),
        base_url=sandbox.base_url,
        retry_attempts=RETRY_ATTEMPTS,
        retry_base_delay=0.01,
        read_timeout=10.0,
        # The forced check at this deadline finds an unknown job within 3 s,
        # and a merge of two small PDFs finishes well before it.
        job_deadline=3.0,
    )


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    directory = tmp_path / "inputs"
    directory.mkdir()
    first = make_pdf(directory, "first.pdf", 3)
    second = make_pdf(directory, "second.pdf", 2)
    return [str(first), str(second)]


@pytest.fixture
def output(tmp_path: Path) -> Path:
    return tmp_path / "out" / OUTPUT_NAME


def inject(sandbox: Sandbox, faults: str) -> None:
    sandbox.set_faults(faults, seed=SEED)
    sandbox.reset_counters()


def listing(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def injected(sandbox: Sandbox, faults: str) -> int:
    kind = faults.split(":", 1)[0]
    return int(sandbox.counters()["faults"].get(kind, 0))


def logged_job_ids(caplog: pytest.LogCaptureFixture) -> list[str]:
    pattern = re.compile(rf"^job ({JOB_ID}) finished")
    found = []
    for record in caplog.records:
        match = pattern.match(record.getMessage())
        if record.name == "pdfco_tasks.sandbox" and match:
            found.append(match.group(1))
    return found


@pytest.mark.parametrize("case", RECOVERED)
def test_transient_fault_recovers(
    case: Recovered,
    sandbox: Sandbox,
    credentials: PdfcoCredentials,
    inputs: list[str],
    output: Path,
) -> None:
    inject(sandbox, case.faults)

    result = merge_documents(inputs, str(output), credentials=credentials)

    sandbox.set_faults("")
    assert injected(sandbox, case.faults) >= 1
    assert result["page_count"] == EXPECTED_PAGES
    assert len(PdfReader(output).pages) == EXPECTED_PAGES
    assert listing(output.parent) == [OUTPUT_NAME]
    assert sandbox.counters()["merge_submissions_total"] == 1
    assert result["resumed"] is False


@pytest.mark.parametrize("case", FAILS)
def test_fault_ends_in_documented_error(
    case: Fails,
    sandbox: Sandbox,
    credentials: PdfcoCredentials,
    inputs: list[str],
    output: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pdfco_tasks.sandbox")
    inject(sandbox, case.faults)

    with pytest.raises(case.error) as caught:
        merge_documents(inputs, str(output), credentials=credentials)

    sandbox.set_faults("")
    counters = sandbox.counters()
    assert injected(sandbox, case.faults) >= 1
    assert counters["merge_submissions_total"] == case.merges
    assert listing(output.parent) == list(case.leftovers)

    message = str(caught.value)
    pattern = case.message
    if "{job}" in case.message:
        job_id = str(caught.value.context["job_id"])
        pattern = case.message.replace("{job}", re.escape(job_id))
        assert_job_matches_sandbox(case, job_id, counters, caplog)
    assert re.search(pattern, message, re.DOTALL), message


def assert_job_matches_sandbox(
    case: Fails,
    job_id: str,
    counters: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Check that the job named in the error is the one job the sandbox saw.

    A job of the `job-unknown` fault is dropped at submission and never runs,
    so the sandbox logs no line for it and counts it as unknown instead.
    """
    assert re.fullmatch(JOB_ID, job_id)
    if case.job_runs:
        assert logged_job_ids(caplog) == [job_id]
    else:
        assert logged_job_ids(caplog) == []
        assert counters["jobs"] == {"unknown": 1}


class TestChunkedMerge:
    """Merges split into one PDF.co job per input (`chunk_size=1`)."""

    @pytest.fixture
    def three_inputs(self, inputs: list[str]) -> list[str]:
        third = make_pdf(Path(inputs[0]).parent, "third.pdf", 1)
        return [*inputs, str(third)]

    def test_transient_faults_join_all_chunks(
        self,
        sandbox: Sandbox,
        credentials: PdfcoCredentials,
        three_inputs: list[str],
        output: Path,
    ) -> None:
        inject(sandbox, "429:0.3")

        result = merge_documents(
            three_inputs, str(output), credentials=credentials, chunk_size=1
        )

        sandbox.set_faults("")
        assert injected(sandbox, "429:0.3") >= 1
        assert result["page_count"] == EXPECTED_PAGES + 1
        assert len(PdfReader(output).pages) == EXPECTED_PAGES + 1
        assert listing(output.parent) == [OUTPUT_NAME]
        assert sandbox.counters()["merge_submissions_total"] == 3

    def test_failed_chunk_leaves_no_parts(
        self,
        sandbox: Sandbox,
        credentials: PdfcoCredentials,
        three_inputs: list[str],
        output: Path,
    ) -> None:
        # With seed 3 the job draws are 0.24, 0.54 and 0.37: two of the three
        # chunk jobs fail and one succeeds, usually after the first failure.
        inject(sandbox, "job-failed:0.5")

        with pytest.raises(JobFailedError, match=rf"PDF.co merge job {JOB_ID} ended"):
            merge_documents(
                three_inputs, str(output), credentials=credentials, chunk_size=1
            )

        sandbox.set_faults("")
        counters = sandbox.counters()
        assert counters["jobs"] == {"failed": 2, "success": 1}
        assert counters["merge_submissions_total"] == 3
        assert listing(output.parent) == []


class TestRerunAfterFault:
    def test_download_failure_rerun_resumes_job(
        self,
        sandbox: Sandbox,
        credentials: PdfcoCredentials,
        inputs: list[str],
        output: Path,
    ) -> None:
        inject(sandbox, "truncate:1.0")
        with pytest.raises(DownloadError) as caught:
            merge_documents(inputs, str(output), credentials=credentials)
        sandbox.set_faults("")

        result = merge_documents(inputs, str(output), credentials=credentials)

        assert result["resumed"] is True
        assert result["job_id"] == caught.value.context["job_id"]
        assert result["page_count"] == EXPECTED_PAGES
        assert sandbox.counters()["merge_submissions_total"] == 1
        assert listing(output.parent) == [OUTPUT_NAME]


class TestRateLimitedBursts:
    def test_real_429s_recover_without_duplicates(
        self,
        pdfco_sandbox_factory: Callable[..., Sandbox],
        state_dir: Path,
        inputs: list[str],
        output: Path,
    ) -> None:
        # Three chunk merges upload, submit and poll at once, well above the
        # sandbox's token bucket of two requests per second.
        limited = pdfco_sandbox_factory(api_keys=(API_KEY,), rate_limit=2.0)
        third = make_pdf(Path(inputs[0]).parent, "third.pdf", 1)
        credentials = PdfcoCredentials(
            api_key=SecretStr(API_KEY),
            base_url=limited.base_url,
            retry_attempts=RETRY_ATTEMPTS,
            retry_base_delay=0.2,
        )

        result = merge_documents(
            [*inputs, str(third)], str(output), credentials=credentials, chunk_size=1
        )

        counters = limited.counters()
        rate_limited = sum(
            statuses.get("429", 0) for statuses in counters["requests"].values()
        )
        assert rate_limited >= 1
        assert counters["faults"] == {}
        assert result["page_count"] == EXPECTED_PAGES + 1
        assert counters["merge_submissions_total"] == 3
        assert listing(output.parent) == [OUTPUT_NAME]
