"""A presigned S3 URL that also signs request headers, such as a part's ``Content-Length``.

minio signs presigned URLs for ``host`` alone, so such a URL takes a body of any size: a
client could park far more bytes in storage than the upload declared, until cleanup aborts
the upload. Signing ``content-length`` as well makes storage refuse any other length.
``resign`` takes the URL minio built (virtual-host or path style, its key encoding, region
and credential scope, any session token) and signs it again with the headers added, by AWS
Signature Version 4's query-string rules; tests/unit/test_s3_signed_uploads.py checks it
against botocore, the AWS SDK's own signer.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

# The query parameters a signature is made of, replaced when signing again.
_SIGNING_PARAMS = frozenset(
    {
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    }
)


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def resign(url: str, method: str, secret_key: str, headers: dict[str, str]) -> str:
    """``url`` (a SigV4 presigned URL) signed again so that it also binds ``headers``: the
    client must send each with exactly this value."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    signing = dict(query)
    kept = [(name, value) for name, value in query if name not in _SIGNING_PARAMS]
    access_key, day, region, service, terminal = signing["X-Amz-Credential"].split("/")
    scope = f"{day}/{region}/{service}/{terminal}"
    signed = {"host": parts.netloc, **{name.lower(): value.strip() for name, value in headers.items()}}
    names = sorted(signed)
    kept += [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", f"{access_key}/{scope}"),
        ("X-Amz-Date", signing["X-Amz-Date"]),
        ("X-Amz-Expires", signing["X-Amz-Expires"]),
        ("X-Amz-SignedHeaders", ";".join(names)),
    ]
    canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(kept))
    canonical_request = "\n".join(
        [
            method,
            parts.path or "/",
            canonical_query,
            *(f"{name}:{signed[name]}" for name in names),
            "",
            ";".join(names),
            "UNSIGNED-PAYLOAD",
        ]
    )
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            signing["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = ("AWS4" + secret_key).encode()
    for step in (day, region, service, terminal):
        key = _hmac(key, step)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    query_string = canonical_query + "&X-Amz-Signature=" + signature
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query_string, ""))
