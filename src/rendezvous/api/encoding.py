"""HTTP content codings for request and response bodies: gzip and deflate, bounded.

"deflate" in HTTP is the zlib format (RFC 9110), which is what Triton clients send and
expect. A compressed request is inflated under the same limit as a plain body, so a small
compressed body cannot expand past it.
"""

from __future__ import annotations

import zlib

from ..errors import MalformedBody, PayloadTooLarge

__all__ = ["MIN_COMPRESS_BYTES", "compress", "decompress"]

# Below this size compressing a response costs more time than it saves on the wire.
MIN_COMPRESS_BYTES = 1024
_WBITS = {"gzip": 31, "deflate": 15}


def decompress(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body as sent before its ``Content-Encoding``, refusing more than ``limit`` bytes."""
    coding = (content_encoding or "identity").strip().lower()
    if coding == "identity":
        return body
    if coding not in _WBITS:
        raise MalformedBody(
            f"unsupported encoding '{content_encoding}'; expected gzip, deflate or identity",
            "headers.content-encoding",
        )
    inflater = zlib.decompressobj(_WBITS[coding])
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise MalformedBody(f"body is not valid {coding} data: {exc}", "body") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed body is over the limit of {limit} bytes")
    if not inflater.eof:
        raise MalformedBody(f"truncated {coding} body", "body")
    return out


def compress(body: bytes, accept_encoding: str | None) -> tuple[bytes, dict[str, str]]:
    """The body in the best coding the client accepts, and the headers that say so."""
    if len(body) < MIN_COMPRESS_BYTES:
        return body, {}
    headers = {"Vary": "Accept-Encoding"}
    coding = _accepted(accept_encoding)
    if coding is None:
        return body, headers
    deflater = zlib.compressobj(6, zlib.DEFLATED, _WBITS[coding])
    headers["Content-Encoding"] = coding
    return deflater.compress(body) + deflater.flush(), headers


def _accepted(header: str | None) -> str | None:
    if not header:
        return None
    accepted: set[str] = set()
    for item in header.split(","):
        token, _, params = item.partition(";")
        try:
            q = float(params.strip().removeprefix("q=") or 1)
        except ValueError:
            q = 1.0
        if q > 0:  # q=0 refuses a coding
            accepted.add(token.strip().lower())
    return next((c for c in ("gzip", "deflate") if c in accepted), None)
