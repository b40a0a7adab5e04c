"""Request parameters from the query string and a JSON, form or multipart body."""

from __future__ import annotations

import email
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from pdfco_tasks.sandbox.errors import ApiError

MAX_BODY_BYTES = 4 * 1024 * 1024
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", ""})
_TOO_DEEP_MESSAGE = (
    "{what} is nested too deeply for the JSON parser; send a shallower object"
)


async def read_params(request: Request) -> dict[str, Any]:
    """Merge the query string and the body into one mapping with lower-case keys.

    Body values win over query values. The `x-api-key` query parameter is left
    out, so it never reaches a handler or a log.

    Raises:
        ApiError: 400 for a body over 4 MB or one that cannot be parsed.
    """
    params: dict[str, Any] = {
        key.lower(): value for key, value in request.query_params.items()
    }
    if request.method in ("POST", "PUT"):
        body = await _read_body(request)
        if body.strip():
            params.update(_parse_body(body, request.headers.get("content-type", "")))
    params.pop("x-api-key", None)
    return params


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(
            400,
            "Request body larger than 4 MB is not supported; "
            "upload files with a presigned URL instead",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(
                400,
                "Request body larger than 4 MB is not supported; "
                "upload files with a presigned URL instead",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_body(body: bytes, content_type: str) -> dict[str, Any]:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        return _lower_keys(
            dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        )
    if media_type == "multipart/form-data":
        return _parse_multipart(body, content_type)
    return _parse_json(body)


def _parse_json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except RecursionError:
        raise ApiError(400, _TOO_DEEP_MESSAGE.format(what="Request body")) from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(
            400,
            "Request body is not valid JSON; send a JSON object, "
            "a form or a multipart form",
        ) from None
    if not isinstance(value, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return _lower_keys(value)


@dataclass(frozen=True)
class FilePart:
    """A file sent as one part of a multipart form.

    Attributes:
        filename: File name from the part's Content-Disposition, or "".
        data: The file content.
    """

    filename: str
    data: bytes


def _parse_multipart(body: bytes, content_type: str) -> dict[str, Any]:
    header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = email.message_from_bytes(header + body)
    if not message.is_multipart():
        raise ApiError(400, "Request body is not a valid multipart form")
    params: dict[str, Any] = {}
    for part in message.get_payload():
        if not isinstance(part, email.message.Message):
            continue
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        filename = part.get_filename()
        if filename is not None:
            params[name.lower()] = FilePart(filename, payload)
        else:
            params[name.lower()] = payload.decode("utf-8", "replace")
    return params


def _lower_keys(values: dict[str, Any]) -> dict[str, Any]:
    return {str(key).lower(): value for key, value in values.items()}


def get_text(params: dict[str, Any], name: str, default: str = "") -> str:
    """Return parameter `name` as a string, or `default` when absent or null."""
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def get_bool(params: dict[str, Any], name: str, default: bool = False) -> bool:
    """Return parameter `name` as a boolean, case-insensitively.

    Raises:
        ApiError: 400 for a value that is not a boolean word or 0/1.
    """
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ApiError(400, f"Parameter '{name}' must be true or false, not {value!r}")


def get_int(
    params: dict[str, Any], name: str, default: int, minimum: int, maximum: int
) -> int:
    """Return parameter `name` as an integer clamped to `maximum`.

    Raises:
        ApiError: 400 for a non-integer value or one below `minimum`.
    """
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ApiError(
            400, f"Parameter '{name}' must be an integer, not {value!r}"
        ) from None
    if number < minimum:
        raise ApiError(400, f"Parameter '{name}' must be >= {minimum}, not {number}")
    return min(number, maximum)


def get_profiles(params: dict[str, Any]) -> dict[str, Any]:
    """Return the `profiles` parameter as a mapping.

    It may be a JSON object or a string holding one, as clients send either.

    Raises:
        ApiError: 444 if it cannot be parsed.
    """
    value = params.get("profiles")
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(str(value))
    except RecursionError:
        raise ApiError(
            444,
            "Profiles parsing error: " + _TOO_DEEP_MESSAGE.format(what="'profiles'"),
        ) from None
    except json.JSONDecodeError:
        raise ApiError(
            444, "Profiles parsing error: 'profiles' must be a JSON object"
        ) from None
    if not isinstance(parsed, dict):
        raise ApiError(444, "Profiles parsing error: 'profiles' must be a JSON object")
    return parsed
