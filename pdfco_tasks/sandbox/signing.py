"""HMAC-signed file URLs in the shape of S3 presigned URLs."""

from __future__ import annotations

import calendar
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

ALGORITHM = "AWS4-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class SignatureCheck:
    """Outcome of checking a signed URL.

    Attributes:
        valid: True when the signature and the expiry both pass.
        code: S3 error code when invalid (`SignatureDoesNotMatch` or
            `AccessDenied`), else an empty string.
        message: S3 error message when invalid.
    """

    valid: bool
    code: str = ""
    message: str = ""


class UrlSigner:
    """Signs and checks file URLs with a secret that lives as long as the process.

    The signature covers the method, the path, the signing time, the lifetime
    and, when the URL was bound to one, the Content-Type of the PUT.

    Args:
        secret: Key for HMAC-SHA256; a random one is drawn when omitted.
    """

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def query(
        self,
        method: str,
        path: str,
        issued_at: float,
        lifetime: int,
        content_type: str | None = None,
    ) -> str:
        """Return the query string that signs `method path` for `lifetime` seconds.

        Args:
            method: HTTP method the URL allows (`PUT` or `GET`).
            path: URL path, already percent-encoded.
            issued_at: Signing time in sandbox-clock epoch seconds.
            lifetime: Seconds the URL stays valid.
            content_type: Content-Type a PUT must send, or None for any.

        Returns:
            The query string without the leading `?`.
        """
        date = time.strftime(DATE_FORMAT, time.gmtime(issued_at))
        signed_headers = "content-type;host" if content_type else "host"
        signature = self._sign(method, path, date, lifetime, content_type or "")
        return urlencode(
            {
                "X-Amz-Algorithm": ALGORITHM,
                "X-Amz-Date": date,
                "X-Amz-Expires": str(lifetime),
                "X-Amz-SignedHeaders": signed_headers,
                "X-Amz-Signature": signature,
            }
        )

    def check(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        now: float,
        content_type: str | None = None,
    ) -> SignatureCheck:
        """Check a signed URL received in a request.

        Args:
            method: HTTP method of the request.
            path: Raw (percent-encoded) path of the request.
            params: Query parameters of the request.
            now: Current sandbox-clock time.
            content_type: Content-Type header of the request.

        Returns:
            The outcome; the signature is checked before the expiry, as S3 does.
        """
        try:
            date = params["X-Amz-Date"]
            lifetime = int(params["X-Amz-Expires"])
            signature = params["X-Amz-Signature"]
            issued_at = calendar.timegm(time.strptime(date, DATE_FORMAT))
        except (KeyError, ValueError):
            return SignatureCheck(
                False,
                "AccessDenied",
                "Query-string authentication parameters are missing or invalid",
            )
        bound = params.get("X-Amz-SignedHeaders", "") == "content-type;host"
        signed_type = (content_type or "") if bound else ""
        expected = self._sign(method, path, date, lifetime, signed_type)
        # compare_digest raises TypeError for str with non-ASCII characters, so
        # both sides are compared as UTF-8 bytes.
        received = signature.encode("utf-8", "surrogatepass")
        if not hmac.compare_digest(expected.encode(), received):
            return SignatureCheck(
                False,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature "
                "you provided. Check your key and signing method.",
            )
        if now > issued_at + lifetime:
            return SignatureCheck(False, "AccessDenied", "Request has expired")
        return SignatureCheck(True)

    def _sign(
        self, method: str, path: str, date: str, lifetime: int, content_type: str
    ) -> str:
        message = "\n".join([method, path, date, str(lifetime), content_type])
        digest = hmac.new(self._secret, message.encode(), hashlib.sha256)
        return digest.hexdigest()
