"""A thin HTTP client of the sandbox for tests, and PDF checks."""

from __future__ import annotations

import io
import time
from typing import Any

import requests
from pypdf import PdfReader

POLL_INTERVAL_SECONDS = 0.05
POLL_TIMEOUT_SECONDS = 120.0


class Api:
    """Calls the sandbox the way a PDF.co client does, over real HTTP.

    Args:
        base_url: The sandbox base URL ending in `/v1`.
        key: The API key to send.
    """

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self.key = key
        self.session = requests.Session()

    def request(
        self, method: str, path: str, key: str | None = None, **kwargs: Any
    ) -> requests.Response:
        """Send a request to `base_url + path` with the API key header."""
        headers = {"x-api-key": self.key if key is None else key}
        headers.update(kwargs.pop("headers", {}))
        kwargs.setdefault("timeout", 60)
        return self.session.request(
            method, self.base_url + path, headers=headers, **kwargs
        )

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        """POST to an API endpoint."""
        return self.request("POST", path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET an API endpoint."""
        return self.request("GET", path, **kwargs)

    def presign(self, name: str, content_type: str | None = None) -> dict[str, Any]:
        """Request a presigned URL pair and return the JSON body."""
        params = {"name": name}
        if content_type is not None:
            params["contenttype"] = content_type
        response = self.get("/file/upload/get-presigned-url", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def upload(
        self, data: bytes, name: str, content_type: str = "application/octet-stream"
    ) -> str:
        """Upload `data` with presigned URL and PUT; return the GET URL."""
        body = self.presign(name, content_type)
        put = requests.put(
            body["presignedUrl"],
            data=data,
            headers={"content-type": content_type},
            timeout=60,
        )
        assert put.status_code == 200, put.text
        url: str = body["url"]
        return url

    def merge(
        self,
        urls: list[str],
        endpoint: str = "merge2",
        is_async: bool = False,
        **params: Any,
    ) -> requests.Response:
        """POST a merge as JSON with `url` joined by commas.

        Args:
            urls: Input URLs.
            endpoint: `merge` or `merge2`.
            is_async: Send `async: true`.
            **params: Further JSON attributes.
        """
        payload = {"url": ",".join(urls), **params}
        if is_async:
            payload["async"] = True
        return self.post(f"/pdf/{endpoint}", json=payload)

    def check(self, job_id: str, **params: Any) -> dict[str, Any]:
        """Call job/check once and return the body."""
        response = self.get("/job/check", params={"jobid": job_id, **params})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait(self, job_id: str) -> dict[str, Any]:
        """Poll job/check until the job leaves `working`; return the last body."""
        deadline = time.monotonic() + POLL_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            body = self.check(job_id)
            if body["status"] != "working":
                return body
            time.sleep(POLL_INTERVAL_SECONDS)
        raise AssertionError(f"job {job_id} still working after the poll timeout")

    def merge_async(self, urls: list[str], **params: Any) -> dict[str, Any]:
        """Submit an async merge2 and return the final job/check body."""
        response = self.merge(urls, is_async=True, **params)
        assert response.status_code == 200, response.text
        return self.wait(response.json()["jobId"])


def page_count(data: bytes) -> int:
    """Return the number of pages of a PDF given as bytes."""
    return len(PdfReader(io.BytesIO(data)).pages)


def page_sizes(data: bytes) -> list[tuple[float, float]]:
    """Return (width, height) of every page of a PDF given as bytes."""
    reader = PdfReader(io.BytesIO(data))
    return [(float(p.mediabox.width), float(p.mediabox.height)) for p in reader.pages]


def download(url: str) -> bytes:
    """GET a file URL without an API key and return the body."""
    response = requests.get(url, timeout=60)
    assert response.status_code == 200, response.text
    return response.content
