"""A tiny OAuth2 authority for tests: a client-credentials token endpoint and the token
introspection endpoint Dovecot's ``oauth2`` passdb asks (``introspection_mode = post``).

``POST /token`` (form ``grant_type=client_credentials``, ``client_id``, ``client_secret``,
optional ``scope``; or HTTP Basic client authentication) answers
``{"access_token", "expires_in", "token_type": "Bearer"}``; a wrong client is a 401
``{"error": "invalid_client"}``. ``POST /introspect`` (form ``token``) answers
``{"active": true, "client": <client id>}`` for a token it issued and did not revoke, else
``{"active": false}``. Tokens are application tokens (as Microsoft 365's client-credentials
tokens are): Dovecot accepts one for any mailbox.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

CLIENT_ID = "keepstone-test-app"
CLIENT_SECRET = "test-client-secret"
EXPIRES_IN = 3600


class OAuthServer:
    def __init__(self, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.introspections = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def introspection_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/introspect"

    def issue(self) -> str:
        """A valid access token, as the token endpoint would give."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.tokens.add(token)
        return token

    def revoke_all(self) -> None:
        with self._lock:
            self.tokens.clear()

    def start(self) -> OAuthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> OAuthServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ----- requests -----

    def token_answer(
        self, form: dict[str, str], basic: tuple[str, str] | None
    ) -> tuple[int, dict[str, object]]:
        with self._lock:
            self.token_requests += 1
        client = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if not (
            secrets.compare_digest(client[0], self.client_id)
            and secrets.compare_digest(client[1], self.client_secret)
        ):
            return 401, {"error": "invalid_client"}
        return 200, {"access_token": self.issue(), "expires_in": EXPIRES_IN, "token_type": "Bearer"}

    def introspect(self, form: dict[str, str]) -> dict[str, object]:
        with self._lock:
            self.introspections += 1
            active = form.get("token", "") in self.tokens
        return {"active": True, "client": self.client_id} if active else {"active": False}


def _handler(authority: OAuthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
            form = {key: values[0] for key, values in raw.items()}
            if self.path == "/token":
                status, body = authority.token_answer(
                    form, _basic(self.headers.get("Authorization"))
                )
            elif self.path == "/introspect":
                status, body = 200, authority.introspect(form)
            else:
                status, body = 404, {"error": "not_found"}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: object) -> None:
            pass  # quiet tests

    return Handler


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return None
    return user, password
