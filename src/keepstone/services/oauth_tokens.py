"""OAuth 2.0 access tokens for ``XOAUTH2`` logins: the client-credentials grant (RFC 6749
§4.4), as Microsoft 365's application access to IMAP uses it, each token cached until shortly
before it expires so that a run over many mailboxes asks the token endpoint once.

A token source is shared by every login of one client (token URL, client id, scope and secret),
across requests and runs, and is safe to call from several threads at once. Errors never quote
the client secret: the endpoint's own ``error``/``error_description`` are shown with any
occurrence of the secret masked.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keepstone.domain.errors import KeepstoneError

# httpx is imported by a token's fetch: a server imports this module at its start (the IMAP
# settings of the API's views) and fetches a token only for an IMAP organization's XOAUTH2.
if TYPE_CHECKING:
    import httpx

TIMEOUT = 15.0
EARLY = 60.0  # renew this many seconds before the announced expiry (clock skew, slow logins)
DEFAULT_LIFETIME = 3600.0  # when the endpoint does not say (``expires_in`` is only RECOMMENDED)
MAX_SOURCES = 256


class TokenFailure(KeepstoneError):
    """The token endpoint did not give a token; ``prop`` is the setting most likely at fault
    (``tokenUrl`` when it cannot be reached, ``clientSecret`` when it refuses the client)."""

    def __init__(self, message: str, prop: str) -> None:
        super().__init__(message)
        self.prop = prop


@dataclass(frozen=True)
class OAuthClient:
    """What a token source is made from: enough to make the same source elsewhere (a remote
    proxy's work package carries it)."""

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str


class TokenSource:
    """Calling it gives a valid access token, fetched when none is cached or it is about to
    expire."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = token_url
        self.client = OAuthClient(token_url, client_id, client_secret, scope)
        self._form = {"grant_type": "client_credentials", "client_id": client_id}
        if scope:
            self._form["scope"] = scope
        self._secret = client_secret
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self.fetches = 0  # how many times the endpoint was asked (tests count them)

    def __call__(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires:
                self._token, lifetime = self._fetch()
                self._expires = self._clock() + max(lifetime - EARLY, lifetime / 2)
            return self._token

    def forget(self) -> None:
        """Drop the cached token (the server refused it: revoked before its expiry)."""
        with self._lock:
            self._token = None

    def _fetch(self) -> tuple[str, float]:
        import httpx

        self.fetches += 1
        try:
            response = httpx.post(
                self.token_url,
                data=self._form | {"client_secret": self._secret},
                headers={"Accept": "application/json"},
                timeout=TIMEOUT,
            )
        except httpx.HTTPError as error:
            raise TokenFailure(
                f"the token endpoint {self.token_url} cannot be reached: {self._masked(error)}",
                "tokenUrl",
            ) from None
        body = _json(response)
        token = body.get("access_token")
        if response.status_code != 200 or not isinstance(token, str) or not token:
            raise TokenFailure(self._refusal(response, body), _blamed(response, body))
        lifetime = body.get("expires_in")
        if isinstance(lifetime, str) and lifetime.isdigit():
            lifetime = int(lifetime)
        if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
            lifetime = DEFAULT_LIFETIME
        return token, float(lifetime)

    def _refusal(self, response: httpx.Response, body: dict[str, Any]) -> str:
        said = " ".join(
            str(body[key])[:300] for key in ("error", "error_description") if key in body
        )
        what = f"HTTP {response.status_code}" + (f": {said}" if said else "")
        if response.status_code == 200:
            what = "an answer without an access_token"
        return self._masked(f"the token endpoint {self.token_url} gave no token ({what})")

    def _masked(self, text: object) -> str:
        return str(text).replace(self._secret, "***")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _blamed(response: httpx.Response, body: dict[str, Any]) -> str:
    if response.status_code in (400, 401) and body.get("error") in (
        "invalid_client",
        "unauthorized_client",
        "invalid_grant",
        None,
    ):
        return "clientSecret"
    if body.get("error") == "invalid_scope":
        return "scope"
    return "tokenUrl"


_sources: OrderedDict[tuple[str, str, str, str], TokenSource] = OrderedDict()
_sources_lock = threading.Lock()


def token_source(token_url: str, client_id: str, client_secret: str, scope: str) -> TokenSource:
    """The shared source for this client (one cache per client, whoever asks)."""
    digest = hashlib.sha256(client_secret.encode()).hexdigest()
    key = (token_url, client_id, scope, digest)
    with _sources_lock:
        source = _sources.get(key)
        if source is None:
            source = _sources[key] = TokenSource(token_url, client_id, client_secret, scope)
            while len(_sources) > MAX_SOURCES:
                _sources.popitem(last=False)
        _sources.move_to_end(key)
        return source
