"""Keeping credentials out of the messages of obstore-based stores."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["redact"]

_MAX_MESSAGE = 600
_SECRET_PATTERNS = re.compile(
    r"(?i)((?:X-Amz-)?(?:Credential|Signature|Security-Token|SignedHeaders)=)[^&\s,\"']+"
    r"|<(AWSAccessKeyId|StringToSign|StringToSignBytes|CanonicalRequest|"
    r"CanonicalRequestBytes|SignatureProvided)>.*?</\2>",
    re.DOTALL,
)


def redact(error: BaseException | str, secrets: Iterable[str]) -> str:
    """A short, credential-free message for an error from obstore or the server.

    Keeps the first paragraph (obstore appends a "Debug source" dump), masks the given
    secret values, and blanks what S3 error responses and presigned URLs may quote:
    ``AWSAccessKeyId``, ``StringToSign``, ``CanonicalRequest``, ``SignatureProvided``,
    credentials, signatures and security tokens.
    """
    text = str(error).split("\n\nDebug source:", 1)[0]
    for secret in secrets:
        text = text.replace(secret, "***")
    text = _SECRET_PATTERNS.sub(lambda m: (m.group(1) or f"<{m.group(2)}>") + "***", text)
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + "..."
    return text
