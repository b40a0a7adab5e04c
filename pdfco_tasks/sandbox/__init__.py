"""A local stand-in for the PDF.co Web API, served over real HTTP.

A client written for PDF.co works against the sandbox once its base URL points
at `http://127.0.0.1:PORT/v1`. The sandbox never reaches off the machine: merge
inputs must be its own file URLs or loopback URLs.

Start it in-process (port 0, background thread) or as a service:

    from pdfco_tasks.sandbox import Sandbox

    with Sandbox(api_keys=("KEY",), faults="429:0.1", faults_seed=1) as sandbox:
        sandbox.base_url            # "http://127.0.0.1:PORT/v1"
        sandbox.clock.advance(3600)  # every expiry moves with the sandbox clock
        sandbox.counters()           # the same JSON as GET /__sandbox/counters

    $ pdfco-sandbox --port 0 --api-key KEY --faults "reset:0.05" --faults-seed 3

The pytest plugin provides two fixtures. `pdfco_sandbox` is a fresh sandbox that
accepts the key `test-key`. `pdfco_sandbox_factory` takes `Sandbox` keyword
arguments and closes every sandbox it started at teardown.

API endpoints, all under `/v1` and authenticated by `x-api-key`:
`file/upload/get-presigned-url` (7 credits), `file/upload` (11),
`file/upload/base64` (21), `file/upload/url` (11), `pdf/merge` (1 credit per
output page), `pdf/merge2` (2 per page), `job/check` (2 per call),
`account/credit/balance`, `pdf/info` (1) and `file/delete`. An async merge pays
for its first page at submission and for the rest at the first job/check that
reports success. Failed and aborted jobs are refunded.

File URLs (`/<id>/<name>?X-Amz-...`) need no key. A presigned PUT is valid for
900 s, an upload's GET URL for 3600 s, and a result for `expiration` minutes.
After that they return 403 with an S3-style XML body.

Control routes, without a key: `GET /__sandbox/counters` (`?window=S` adds
maximum request counts for more window sizes), `POST /__sandbox/reset-counters`,
`POST /__sandbox/clock {"advance": S}` and
`POST /__sandbox/faults {"faults": "KIND:RATE,...", "seed": N}`.

Faults (rates in [0, 1], drawn from a seeded `random.Random`):

- `429`, `500`, `503`, `error200` (HTTP 200 with `error: true`, status 500):
  any `/v1` request gets this answer before it has any effect.
- `408`, `445`: a merge or merge2 request gets a timeout error before it has
  any effect.
- `reset`: the connection of a `/v1` request or a file download is dropped
  without a response.
- `slow`: a `/v1` request or a file download waits `slow_seconds`, then runs.
- `truncate`: a download sends the full Content-Length but half the body.
- `job-failed`, `job-aborted`: an accepted async job ends failed (errorCode
  442, naming its first input) or aborted, and is refunded.
- `job-unknown`: the sandbox forgets an accepted async job. job/check reports
  `working` for it, or `unknown` with `force=true`. Its first-page charge is
  kept, as the sandbox no longer knows the job.
- `drop-page`: a merge result silently lacks its last page while `pageCount`
  reports the full count.

Request faults are drawn once per request, in the order `reset`, `slow`,
`429`, `500`, `503`, `error200`, `408`, `445`, and the first hit wins. Job
faults are drawn once per accepted merge, download faults once per download.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pdfco_tasks.sandbox.server import Sandbox

__all__ = ["Sandbox"]


def __getattr__(name: str) -> Any:
    # Importing the server pulls in uvicorn, Starlette, pypdf and Pillow, so it
    # is deferred to the first use of `Sandbox`. The pytest plugin imports this
    # package in every test run.
    if name == "Sandbox":
        from pdfco_tasks.sandbox.server import Sandbox

        return Sandbox
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
