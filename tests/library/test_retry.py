"""Tests of the retry policy: classification, delays and the retry loop."""

from __future__ import annotations

import logging
import pickle
import random

import pytest
import requests

from pdfco_tasks.exceptions import (
    AuthenticationError,
    InputRejectedError,
    InsufficientCreditsError,
    RateLimitedError,
    ServerError,
    ServerTimeoutError,
    SubmissionUnconfirmedError,
    TransportError,
)
from pdfco_tasks.retry import (
    backoff_delays,
    call_with_retries,
    compute_delay,
    describe_failure,
    is_safe_to_resubmit,
    is_transient,
)
from pdfco_tasks.settings import RetryPolicy

POLICY = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=3.0)


class TestIsTransient:
    @pytest.mark.parametrize(
        "exc",
        [
            pytest.param(RateLimitedError("slow down", status_code=429), id="429"),
            pytest.param(ServerTimeoutError("timed out", status_code=445), id="445"),
            pytest.param(ServerError("boom", status_code=503), id="503"),
            pytest.param(TransportError("reset", reason="connection reset"), id="tx"),
            pytest.param(requests.ConnectionError("refused"), id="requests-conn"),
            pytest.param(requests.ReadTimeout("slow"), id="requests-read-timeout"),
            pytest.param(
                requests.exceptions.ChunkedEncodingError("cut"), id="requests-chunked"
            ),
        ],
    )
    def test_transient_errors_are_retried(self, exc: BaseException) -> None:
        assert is_transient(exc)

    @pytest.mark.parametrize(
        "exc",
        [
            pytest.param(InputRejectedError("bad", status_code=400), id="400"),
            pytest.param(AuthenticationError("key", status_code=401), id="401"),
            pytest.param(InsufficientCreditsError("pay", status_code=402), id="402"),
            pytest.param(InputRejectedError("type", status_code=415), id="415"),
            pytest.param(InputRejectedError("password", status_code=441), id="441"),
            pytest.param(SubmissionUnconfirmedError("maybe"), id="unconfirmed"),
            pytest.param(ValueError("bug"), id="ValueError"),
        ],
    )
    def test_permanent_errors_are_not_retried(self, exc: BaseException) -> None:
        assert not is_transient(exc)

    def test_unconfirmed_submission_stays_permanent_after_pickling(self) -> None:
        exc = SubmissionUnconfirmedError("maybe", reason="read timeout")

        restored = pickle.loads(pickle.dumps(exc))

        assert isinstance(restored, TransportError)
        assert not is_transient(restored)
        assert restored.context == {"reason": "read timeout"}


class TestIsSafeToResubmit:
    @pytest.mark.parametrize(
        "exc",
        [
            pytest.param(RateLimitedError("x", status_code=429), id="429"),
            pytest.param(ServerTimeoutError("x", status_code=408), id="408"),
            pytest.param(ServerTimeoutError("x", status_code=445), id="445"),
            pytest.param(ServerError("x", status_code=500), id="500"),
            pytest.param(TransportError("x", reason="connect timeout"), id="connect"),
            pytest.param(
                TransportError("x", reason="connection refused"), id="refused"
            ),
            pytest.param(TransportError("x", reason="connection reset"), id="reset"),
        ],
    )
    def test_failures_before_any_effect_are_resent(self, exc: BaseException) -> None:
        assert is_safe_to_resubmit(exc)

    @pytest.mark.parametrize(
        "exc",
        [
            pytest.param(TransportError("x", reason="read timeout"), id="read-timeout"),
            pytest.param(TransportError("x", reason="response cut short"), id="cut"),
            pytest.param(InputRejectedError("x", status_code=400), id="400"),
            pytest.param(requests.ReadTimeout("raw"), id="raw-read-timeout"),
        ],
    )
    def test_failures_after_sending_are_not_resent(self, exc: BaseException) -> None:
        assert not is_safe_to_resubmit(exc)


class TestComputeDelay:
    def test_retry_after_is_honoured(self) -> None:
        assert compute_delay(1, POLICY, retry_after=2.0) == 2.0

    def test_retry_after_is_capped_at_max_delay(self) -> None:
        assert compute_delay(1, POLICY, retry_after=120.0) == 3.0

    def test_negative_retry_after_means_no_wait(self) -> None:
        assert compute_delay(3, POLICY, retry_after=-5.0) == 0.0

    def test_jitter_stays_below_exponential_cap(self) -> None:
        rng = random.Random(7)
        caps = {1: 0.5, 2: 1.0, 3: 2.0, 4: 3.0, 10: 3.0}

        for attempt, cap in caps.items():
            draws = [compute_delay(attempt, POLICY, None, rng) for _ in range(200)]
            assert min(draws) >= 0.0
            assert max(draws) <= cap
            assert max(draws) > cap * 0.8

    def test_same_seed_gives_same_delays(self) -> None:
        first = list(backoff_delays(POLICY, random.Random(3)))
        second = list(backoff_delays(POLICY, random.Random(3)))

        assert first == second
        assert len(first) == POLICY.max_attempts - 1

    def test_huge_attempt_number_does_not_overflow(self) -> None:
        assert compute_delay(10_000, POLICY, None, random.Random(1)) <= 3.0


class TestCallWithRetries:
    def test_transient_failures_retried_until_success(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        outcomes: list[Exception | str] = [
            ServerError("down", status_code=503),
            RateLimitedError("slow", status_code=429, retry_after=1.5),
            "done",
        ]
        slept: list[float] = []
        retried: list[tuple[str, int]] = []

        def flaky() -> str:
            outcome = outcomes.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        with caplog.at_level(logging.WARNING, logger="pdfco_tasks"):
            result = call_with_retries(
                flaky,
                policy=POLICY,
                sleep=slept.append,
                describe="POST /v1/pdf/merge2",
                on_retry=lambda exc, n, d: retried.append((describe_failure(exc), n)),
                rng=random.Random(0),
            )

        assert result == "done"
        assert retried == [("HTTP 503", 1), ("HTTP 429", 2)]
        assert slept[1] == 1.5
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 2
        assert "POST /v1/pdf/merge2 failed (HTTP 503); retry 1 of 3" in warnings[0]
        assert "retry 2 of 3 in 1.50 s" in warnings[1]

    def test_permanent_failure_raised_after_one_call(self) -> None:
        calls = 0

        def rejected() -> None:
            nonlocal calls
            calls += 1
            raise AuthenticationError("bad key", status_code=401)

        with pytest.raises(AuthenticationError, match=r"^bad key$"):
            call_with_retries(rejected, policy=POLICY, sleep=_no_sleep, describe="x")
        assert calls == 1

    def test_exhausted_retries_name_the_attempts(self) -> None:
        calls = 0

        def down() -> None:
            nonlocal calls
            calls += 1
            raise ServerError("PDF.co failed", status_code=500, endpoint="GET /x")

        with pytest.raises(ServerError, match="gave up after 4 attempts") as info:
            call_with_retries(down, policy=POLICY, sleep=_no_sleep, describe="GET /x")
        assert calls == 4
        assert info.value.status_code == 500
        assert info.value.endpoint == "GET /x"
        assert isinstance(info.value.__cause__, ServerError)

    def test_custom_predicate_limits_retries(self) -> None:
        calls = 0

        def timed_out() -> None:
            nonlocal calls
            calls += 1
            raise TransportError("no answer", reason="read timeout")

        with pytest.raises(TransportError, match="no answer"):
            call_with_retries(
                timed_out,
                policy=POLICY,
                sleep=_no_sleep,
                describe="POST /v1/pdf/merge2",
                retry_if=is_safe_to_resubmit,
            )
        assert calls == 1

    def test_single_attempt_policy_raises_unchanged(self) -> None:
        def down() -> None:
            raise ServerError("PDF.co failed", status_code=500)

        with pytest.raises(ServerError, match=r"^PDF\.co failed$"):
            call_with_retries(
                down,
                policy=RetryPolicy(max_attempts=1),
                sleep=_no_sleep,
                describe="x",
            )


def _no_sleep(seconds: float) -> None:
    del seconds
