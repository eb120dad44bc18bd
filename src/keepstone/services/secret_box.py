"""Secrets sealed with the operator's key (``KEEPSTONE_SECRET_KEY`` or ``--secret-key-file``), so
the catalog can carry them to every server sharing it without ever holding them in the clear.

Pure: no file, no catalog. Fernet (AES-128-CBC with HMAC-SHA256) authenticates each token; the
secret's name is sealed with it and checked on opening, so a token copied onto another row (one
owner's secret handed to another) does not open.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

KEY_BYTES = 32
_SEPARATOR = b"\0"


class SecretKeyError(ValueError):
    """A key that is no Fernet key, or one that does not open a sealed secret. The message never
    carries the key or the secret."""


class SecretBox:
    """Seals and opens secrets with one key; its repr withholds the key."""

    __slots__ = ("_fernet",)

    def __init__(self, key: str) -> None:
        # imported with the first key: cryptography's library is about 8 MB resident, which a
        # process without a secret key (a backup's, with no secret to open) never needs
        from cryptography.fernet import Fernet

        self._fernet: Fernet = Fernet(_checked_key(key))

    def __repr__(self) -> str:
        return "SecretBox(<key withheld>)"

    def seal(self, name: str, data: bytes) -> str:
        """``data`` encrypted and bound to ``name``: an ASCII token."""
        return self._fernet.encrypt(name.encode() + _SEPARATOR + data).decode("ascii")

    def open(self, name: str, token: str) -> bytes:
        """The secret sealed as ``name``; a wrong key or another name's token is refused."""
        from cryptography.fernet import InvalidToken

        try:
            plain = self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise SecretKeyError(
                "the secret key does not open the secrets kept in the catalog "
                "(another key sealed them)"
            ) from None
        sealed_for, _, data = plain.partition(_SEPARATOR)
        if sealed_for != name.encode():
            raise SecretKeyError(f"the catalog's secret '{name}' was sealed for another owner")
        return data


def _checked_key(key: str) -> bytes:
    text = key.strip().encode("ascii", errors="replace")
    try:
        raw = base64.b64decode(text, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_BYTES:
        raise SecretKeyError(
            "the secret key is not a Fernet key (URL-safe base64 of 32 bytes; make one with "
            "'python -c \"from cryptography.fernet import Fernet; print(Fernet.generate_key())\"')"
        )
    return text
