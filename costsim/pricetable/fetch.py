"""Read a price source from a local PATH or an http(s) URL, with a timeout and a size cap.

Only ``http://`` and ``https://`` URLs are fetched (redirects included); anything else that looks
like a URL (``ftp://``, ``file://``, ...) is refused, and everything without a scheme is a local
path. Failures become one-line :class:`~costsim.errors.CostsimError` messages; the caller parses
and validates the whole document before anything is written.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import CostsimError
from ..limits import MAX_SOURCE_VALUES

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_TIMEOUT", "is_url", "load_json", "read_bytes"]

#: Seconds to wait for a connection or for the next chunk of data.
DEFAULT_TIMEOUT = 30.0
#: Largest source accepted (LiteLLM's full map is ~3.5 MB, OpenRouter's model list ~1 MB).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_CHUNK = 1 << 16


def is_url(spec: str) -> bool:
    return bool(_SCHEME.match(spec))


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        m = _SCHEME.match(newurl)
        if m and m.group(1).lower() not in ("http", "https"):
            raise urllib.error.URLError(f"redirected to a non-http(s) URL: {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _too_big(label: str, max_bytes: int) -> CostsimError:
    return CostsimError(
        f"source is larger than the {max_bytes:,}-byte limit; is this a price source?", label
    )


def _fetch_url(url: str, timeout: float, max_bytes: int) -> bytes:
    opener = urllib.request.build_opener(_HttpOnlyRedirects())
    req = urllib.request.Request(
        url, headers={"User-Agent": "costsim price-table update", "Accept": "application/json"}
    )
    try:
        with opener.open(req, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise _too_big(url, max_bytes)
            chunks, size = [], 0
            while True:
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise _too_big(url, max_bytes)
                chunks.append(chunk)
            data = b"".join(chunks)
            if length and length.isdigit() and len(data) != int(length):
                raise CostsimError(
                    f"download incomplete: got {len(data):,} of {int(length):,} bytes", url
                )
            return data
    except CostsimError:
        raise
    except urllib.error.HTTPError as exc:
        raise CostsimError(f"HTTP {exc.code} {exc.reason}", url) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise CostsimError(f"timed out after {timeout:g}s", url) from None
        if isinstance(reason, OSError) and reason.strerror:
            reason = reason.strerror
        raise CostsimError(f"cannot fetch: {reason}", url) from None
    except (socket.timeout, TimeoutError):
        raise CostsimError(f"timed out after {timeout:g}s", url) from None
    except http.client.IncompleteRead as exc:
        raise CostsimError(
            f"download incomplete: connection closed after {len(exc.partial):,} bytes", url
        ) from None
    except (http.client.HTTPException, OSError) as exc:
        raise CostsimError(f"cannot fetch: {exc.__class__.__name__}: {exc}", url) from None


def _read_path(path: str, max_bytes: int) -> bytes:
    p = Path(path).expanduser()
    try:
        if p.is_dir():
            raise CostsimError("is a directory, not a price source file", path)
        if p.stat().st_size > max_bytes:
            raise _too_big(path, max_bytes)
        with open(p, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise CostsimError("no such file", path) from None
    except PermissionError:
        raise CostsimError("permission denied", path) from None
    except OSError as exc:
        raise CostsimError(f"cannot read: {exc.strerror or exc}", path) from None
    if len(data) > max_bytes:
        raise _too_big(path, max_bytes)
    return data


def read_bytes(
    spec: str, *, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = DEFAULT_MAX_BYTES
) -> bytes:
    """The raw bytes of ``spec``: an http(s) URL or a local path."""
    m = _SCHEME.match(spec)
    if m:
        if m.group(1).lower() not in ("http", "https"):
            raise CostsimError(
                f"unsupported URL scheme '{m.group(1)}' (use http(s) or a local path)", spec
            )
        return _fetch_url(spec, timeout, max_bytes)
    return _read_path(spec, max_bytes)


def load_json(
    spec: str, *, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = DEFAULT_MAX_BYTES
) -> Any:
    """Read and decode a JSON price source. A truncated or garbled document is an error that
    names the line and column where decoding stopped."""
    data = read_bytes(spec, timeout=timeout, max_bytes=max_bytes)
    if not data.strip():
        raise CostsimError("source is empty", spec)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CostsimError(f"not UTF-8 text (byte {exc.start}); is this JSON?", spec) from None
    # Every JSON value but the first follows a ',', '[' or ':' (counted over the whole text,
    # strings included: an over-estimate), so this bounds the objects json.loads would build.
    values = text.count(",") + text.count("[") + text.count(":")
    if values > MAX_SOURCE_VALUES:
        raise CostsimError(f"source has more than {MAX_SOURCE_VALUES:,} values (LiteLLM's "
                           "whole map has about 150,000); is this a price source?", spec)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (truncated download?)" if exc.pos >= len(text.rstrip()) - 1 else ""
        raise CostsimError(
            f"not valid JSON: {exc.msg} at column {exc.colno}{hint}", spec, exc.lineno
        ) from None
    except RecursionError:
        raise CostsimError("not accepted: JSON nested too deeply (a price source nests a few "
                           "levels)", spec) from None
    except ValueError as exc:   # e.g. an integer of more than 4,300 digits
        raise CostsimError(f"not valid JSON: {str(exc).split(';')[0]}", spec) from None
