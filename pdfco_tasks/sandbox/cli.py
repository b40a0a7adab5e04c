"""`pdfco-sandbox`: run the PDF.co stand-in as a local service."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Sequence

from pdfco_tasks.sandbox.faults import parse_faults

MAX_PORT = 65535


def port_number(text: str) -> int:
    """Parse a TCP port for argparse; 0 lets the system pick a free port.

    Raises:
        argparse.ArgumentTypeError: For a non-integer or one outside 0-65535.
    """
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"port must be an integer 0-{MAX_PORT}, not {text!r}"
        ) from None
    if not 0 <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"port must be 0-{MAX_PORT}, not {port}")
    return port


def seconds(text: str) -> float:
    """Parse a finite, non-negative number of seconds for argparse.

    Raises:
        argparse.ArgumentTypeError: For a non-number, NaN, infinity or a
            negative value.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds, not {text!r}"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(
            f"must be a finite number of seconds >= 0, not {text!r}"
        )
    return value


def requests_per_second(text: str) -> float:
    """Parse a finite rate above zero for argparse.

    Raises:
        argparse.ArgumentTypeError: For a non-number, NaN, infinity or a
            value <= 0.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number of requests per second, not {text!r}"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"must be a finite number of requests per second > 0, not {text!r}; "
            "omit --rate-limit to turn limiting off"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of `pdfco-sandbox`."""
    parser = argparse.ArgumentParser(
        prog="pdfco-sandbox",
        description="Serve a local stand-in for the PDF.co Web API. The first "
        "line on stdout is the API base URL.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=0,
        help="port to bind; 0 picks a free port (default: 0)",
    )
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accepted API key; repeat for several (default: test-key)",
    )
    parser.add_argument(
        "--credits",
        type=int,
        default=1_000_000,
        help="starting credits of every key (default: 1000000)",
    )
    parser.add_argument(
        "--rate-limit",
        type=requests_per_second,
        default=None,
        metavar="RPS",
        help="requests per second per key; off when omitted",
    )
    parser.add_argument(
        "--rate-burst",
        type=int,
        default=None,
        metavar="N",
        help="token-bucket size (default: the rate rounded up)",
    )
    parser.add_argument(
        "--job-latency",
        type=seconds,
        default=0.0,
        metavar="S",
        help="seconds an async job reports 'working' at least",
    )
    parser.add_argument(
        "--clock-offset",
        type=seconds,
        default=0.0,
        metavar="S",
        help="seconds the sandbox clock runs ahead of real time",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="storage directory (default: a temporary directory removed on exit)",
    )
    parser.add_argument(
        "--sync-budget",
        type=seconds,
        default=30.0,
        metavar="S",
        help="seconds a sync merge may take before 408 (default: 30)",
    )
    parser.add_argument(
        "--faults",
        default="",
        metavar="KIND:RATE,...",
        help="injected faults, e.g. '429:0.2,reset:0.05'",
    )
    parser.add_argument(
        "--faults-seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the fault generator (default: 0)",
    )
    parser.add_argument(
        "--slow-seconds",
        type=seconds,
        default=2.0,
        metavar="S",
        help="delay of the 'slow' fault in seconds (default: 2)",
    )
    parser.add_argument(
        "--errors-as-200",
        action="store_true",
        help="send error bodies with HTTP status 200",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=4,
        metavar="N",
        help="merge jobs that run at once (default: 4)",
    )
    parser.add_argument(
        "--soffice-timeout",
        type=seconds,
        default=120.0,
        metavar="S",
        help="seconds before a LibreOffice conversion is killed (default: 120)",
    )
    parser.add_argument(
        "--max-input-bytes",
        type=int,
        default=2 * 1024**3,
        metavar="N",
        help="bytes one upload, or all inputs of one merge, may take (default: 2 GB)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="level of the request log on stderr (default: INFO)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Start the sandbox, print its base URL and serve until SIGINT or SIGTERM.

    Args:
        argv: Command-line arguments without the program name.

    Returns:
        The exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        parse_faults(args.faults)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    from pdfco_tasks.sandbox.server import Sandbox

    try:
        sandbox = Sandbox(
            api_keys=tuple(args.api_keys or ["test-key"]),
            credits=args.credits,
            faults=args.faults,
            faults_seed=args.faults_seed,
            job_latency=args.job_latency,
            rate_limit=args.rate_limit,
            rate_burst=args.rate_burst,
            data_dir=args.data_dir,
            errors_as_200=args.errors_as_200,
            sync_budget=args.sync_budget,
            slow_seconds=args.slow_seconds,
            workers=args.workers,
            clock_offset=args.clock_offset,
            soffice_timeout=args.soffice_timeout,
            max_input_bytes=args.max_input_bytes,
            host=args.host,
            port=args.port,
        )
    except (OSError, ValueError) as exc:
        print(f"pdfco-sandbox: {exc}", file=sys.stderr)
        return 2

    def announce() -> None:
        print(sandbox.base_url, flush=True)
        logging.getLogger("pdfco_tasks.sandbox").info(
            "serving the PDF.co sandbox at %s with data directory %s",
            sandbox.base_url,
            sandbox.data_dir,
        )

    sandbox.serve_forever(on_ready=announce)
    return 0


if __name__ == "__main__":
    sys.exit(main())
