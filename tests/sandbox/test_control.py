"""Counters, the request log, the clock and the pytest fixtures."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from pdfco_tasks.sandbox import Sandbox
from tests.sandbox.helpers import Api
from tests.sandbox.inputs import pdf_bytes


class TestCounters:
    def test_counters_after_a_merge(self, pdfco_sandbox: Sandbox) -> None:
        api = Api(pdfco_sandbox.base_url, pdfco_sandbox.api_key)
        url = api.upload(pdf_bytes(2), "a.pdf")
        final = api.merge_async([url])
        requests.get(final["url"], timeout=30)

        counters = requests.get(
            pdfco_sandbox.origin + "/__sandbox/counters", timeout=30
        ).json()

        checks = counters["requests"]["GET /v1/job/check"]["200"]
        assert counters["requests"]["GET /v1/file/upload/get-presigned-url"] == {
            "200": 1
        }
        assert counters["requests"]["PUT file"] == {"200": 1}
        assert counters["requests"]["POST /v1/pdf/merge2"] == {"200": 1}
        assert counters["requests"]["GET file"] == {"200": 1}
        assert counters["merge_submissions"] == {"test-key": 1}
        assert counters["jobs"] == {"success": 1}
        assert counters["presigned_urls"] == 1
        assert counters["puts"] == 1
        assert counters["downloads"] == 1
        assert counters["credits_charged"] == 7 + 2 + 2 + 2 * checks
        assert counters["credits_refunded"] == 0
        assert len(counters["request_log"]) == 2 + checks
        assert counters["max_requests_in_window"]["1.0"] >= 1

    def test_counters_method_matches_http(self, pdfco_sandbox: Sandbox) -> None:
        api = Api(pdfco_sandbox.base_url, pdfco_sandbox.api_key)
        api.get("/account/credit/balance")

        over_http = requests.get(
            pdfco_sandbox.origin + "/__sandbox/counters", timeout=30
        ).json()
        in_process = pdfco_sandbox.counters()

        assert in_process["requests"] == over_http["requests"]
        assert in_process["request_log"] == over_http["request_log"]

    def test_request_log_entries(self, pdfco_sandbox: Sandbox) -> None:
        api = Api(pdfco_sandbox.base_url, pdfco_sandbox.api_key)
        api.get("/account/credit/balance", key="wrong")

        entry = pdfco_sandbox.counters()["request_log"][0]

        assert entry["endpoint"] == "GET /v1/account/credit/balance"
        assert entry["status"] == "401"
        assert isinstance(entry["t"], float)

    def test_control_routes_not_logged_as_api(self, pdfco_sandbox: Sandbox) -> None:
        requests.get(pdfco_sandbox.origin + "/__sandbox/counters", timeout=30)

        assert pdfco_sandbox.counters()["request_log"] == []

    def test_max_requests_in_window(self, pdfco_sandbox: Sandbox) -> None:
        api = Api(pdfco_sandbox.base_url, pdfco_sandbox.api_key)
        for _ in range(5):
            api.get("/account/credit/balance")

        # Five requests fit in one window of an hour whatever the machine speed.
        assert pdfco_sandbox.max_requests_in_window(3600.0) == 5
        assert 1 <= pdfco_sandbox.max_requests_in_window(1.0) <= 5
        assert pdfco_sandbox.max_requests_in_window(1e-12) == 1

    def test_window_parameter_over_http(self, pdfco_sandbox: Sandbox) -> None:
        api = Api(pdfco_sandbox.base_url, pdfco_sandbox.api_key)
        for _ in range(3):
            api.get("/account/credit/balance")

        counters = requests.get(
            pdfco_sandbox.origin + "/__sandbox/counters",
            params={"window": ["3600", "0.5"]},
            timeout=30,
        ).json()

        assert counters["max_requests_in_window"]["3600.0"] == 3
        assert 1 <= counters["max_requests_in_window"]["0.5"] <= 3
        assert 1 <= counters["max_requests_in_window"]["1.0"] <= 3

    def test_reset_counters_over_http(self, pdfco_sandbox: Sandbox) -> None:
        api = Api(pdfco_sandbox.base_url, pdfco_sandbox.api_key)
        api.presign("a.pdf")

        response = requests.post(
            pdfco_sandbox.origin + "/__sandbox/reset-counters", timeout=30
        )

        assert response.status_code == 200
        assert pdfco_sandbox.counters()["presigned_urls"] == 0
        assert pdfco_sandbox.counters()["request_log"] == []

    def test_reset_counters_in_process(self, pdfco_sandbox: Sandbox) -> None:
        Api(pdfco_sandbox.base_url, pdfco_sandbox.api_key).presign("a.pdf")

        pdfco_sandbox.reset_counters()

        assert pdfco_sandbox.counters()["requests"] == {}


class TestClock:
    def test_clock_advanced_over_http(self, pdfco_sandbox: Sandbox) -> None:
        response = requests.post(
            pdfco_sandbox.origin + "/__sandbox/clock", json={"advance": 90}, timeout=30
        )

        assert response.json()["offset"] == 90
        assert pdfco_sandbox.clock.offset == 90

    def test_clock_advance_expires_presigned_put(self, pdfco_sandbox: Sandbox) -> None:
        api = Api(pdfco_sandbox.base_url, pdfco_sandbox.api_key)
        body = api.presign("a.pdf")

        requests.post(
            pdfco_sandbox.origin + "/__sandbox/clock",
            json={"advance": 1000},
            timeout=30,
        )
        put = requests.put(body["presignedUrl"], data=b"x", timeout=30)

        assert put.status_code == 403

    def test_negative_advance_rejected(self, pdfco_sandbox: Sandbox) -> None:
        response = requests.post(
            pdfco_sandbox.origin + "/__sandbox/clock", json={"advance": -5}, timeout=30
        )

        assert response.status_code == 400
        with pytest.raises(ValueError, match="seconds must be >= 0"):
            pdfco_sandbox.clock.advance(-5)

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            pytest.param(
                '{"advance": NaN}',
                "seconds must be a finite number, not nan",
                id="nan",
            ),
            pytest.param(
                '{"advance": Infinity}',
                "seconds must be a finite number, not inf",
                id="inf",
            ),
            pytest.param(
                '{"advance": "abc"}',
                "advance must be a number of seconds, not 'abc'",
                id="text",
            ),
            pytest.param(
                '{"advance": true}',
                "advance must be a number of seconds, not True",
                id="bool",
            ),
            pytest.param(
                '{"offset": "abc"}',
                "unknown clock parameter 'offset'; send {\"advance\": seconds} "
                "to move the clock forward",
                id="offset",
            ),
        ],
    )
    def test_bad_advance_rejected(
        self, pdfco_sandbox: Sandbox, body: str, message: str
    ) -> None:
        response = requests.post(
            pdfco_sandbox.origin + "/__sandbox/clock",
            data=body,
            headers={"content-type": "application/json"},
            timeout=30,
        )

        assert response.status_code == 400
        assert response.json() == {"error": True, "message": message}
        assert pdfco_sandbox.clock.offset == 0

    def test_clock_offset_knob(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        sandbox = pdfco_sandbox_factory(clock_offset=7200)

        assert sandbox.clock.offset == 7200


class TestFixtures:
    def test_fixture_uses_test_key(self, pdfco_sandbox: Sandbox) -> None:
        api = Api(pdfco_sandbox.base_url, "test-key")

        assert pdfco_sandbox.api_key == "test-key"
        assert api.get("/account/credit/balance").status_code == 200
        assert pdfco_sandbox.base_url.startswith("http://127.0.0.1:")
        assert pdfco_sandbox.base_url.endswith("/v1")

    def test_factory_stops_servers_at_teardown(
        self, pdfco_sandbox_factory: Callable[..., Sandbox]
    ) -> None:
        first = pdfco_sandbox_factory(credits=5)
        second = pdfco_sandbox_factory(api_keys=("other",))

        assert first.balance() == 5
        assert second.api_key == "other"
        assert first.port != second.port

    def test_closed_sandbox_refuses_connections(self) -> None:
        with Sandbox() as sandbox:
            url = sandbox.base_url + "/account/credit/balance"
            data_dir = sandbox.data_dir
            assert requests.get(url, timeout=30).status_code == 401

        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=5)
        assert not data_dir.exists()

    def test_given_data_dir_kept(self, tmp_path: object) -> None:
        from pathlib import Path

        directory = Path(str(tmp_path)) / "data"
        with Sandbox(data_dir=directory) as sandbox:
            Api(sandbox.base_url, sandbox.api_key).upload(b"x", "kept.bin")

        assert list(directory.glob("objects/*/kept.bin"))

    def test_invalid_knobs_rejected(self) -> None:
        with pytest.raises(ValueError, match="workers must be >= 1"):
            Sandbox(workers=0)
        with pytest.raises(ValueError, match="api_keys"):
            Sandbox(api_keys=())
        with pytest.raises(ValueError, match="rate limit must be > 0"):
            Sandbox(rate_limit=0)

    def test_non_finite_knobs_rejected(self) -> None:
        nan = float("nan")
        with pytest.raises(ValueError, match="job_latency must be finite and >= 0"):
            Sandbox(job_latency=nan)
        with pytest.raises(ValueError, match="clock_offset must be a finite number"):
            Sandbox(clock_offset=float("inf"))
        with pytest.raises(ValueError, match="rate_limit must be a finite number"):
            Sandbox(rate_limit=nan)
