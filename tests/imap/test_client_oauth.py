"""XOAUTH2 end to end: a client-credentials token from the local authority, checked by
Dovecot's oauth2 passdb through token introspection."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from keepstone.sources.imap import AuthenticationFailed, OAuth2, Security, connect
from keepstone.sources.imap.login import log_in
from keepstone.sources.imap.transport import open_wire
from tests.imap.conftest import ImapUser


def _client_credentials(url: str, client_id: str, secret: str) -> dict[str, object]:
    form = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    ).encode()
    with urllib.request.urlopen(url, data=form, timeout=30) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def test_xoauth2_with_a_client_credentials_token(oauth_user: ImapUser) -> None:
    authority = oauth_user.server.oauth
    assert authority is not None
    answer = _client_credentials(authority.token_url, authority.client_id, authority.client_secret)
    assert answer["token_type"] == "Bearer"
    assert isinstance(answer["expires_in"], int)
    token = str(answer["access_token"])
    calls: list[int] = []

    def fetch_token() -> str:
        calls.append(1)
        return token

    for security in (Security.TLS, Security.STARTTLS):
        with connect(oauth_user.endpoint(security), OAuth2(oauth_user.name, fetch_token)) as s:
            assert "INBOX" in {f.wire_name for f in s.folders()}
    assert len(calls) == 2


def test_wrong_client_secret_is_refused_by_the_authority(oauth_user: ImapUser) -> None:
    authority = oauth_user.server.oauth
    assert authority is not None
    with pytest.raises(urllib.error.HTTPError) as caught:
        _client_credentials(authority.token_url, authority.client_id, "wrong")
    assert caught.value.code == 401


def test_revoked_or_unknown_token_is_authentication_failed(oauth_user: ImapUser) -> None:
    with pytest.raises(AuthenticationFailed):
        connect(oauth_user.endpoint(), OAuth2(oauth_user.name, lambda: "not-a-token"))


def test_token_function_failure_is_authentication_failed(oauth_user: ImapUser) -> None:
    def broken() -> str:
        raise RuntimeError("token endpoint said 401")

    with pytest.raises(AuthenticationFailed, match="no OAuth2 access token"):
        connect(oauth_user.endpoint(), OAuth2(oauth_user.name, broken))


@pytest.mark.parametrize("token_ok", [True, False])
def test_xoauth2_without_sasl_ir(oauth_user: ImapUser, token_ok: bool) -> None:
    """Servers without SASL-IR get the payload after the first continuation; a refusal's
    error continuation is answered with an empty line and ends as AuthenticationFailed."""
    authority = oauth_user.server.oauth
    assert authority is not None
    token = authority.issue() if token_ok else "bad-token"
    wire, _ = open_wire(oauth_user.endpoint())
    try:
        credentials = OAuth2(oauth_user.name, lambda: token)
        before = frozenset({"IMAP4REV1", "AUTH=XOAUTH2"})
        if token_ok:
            assert "IMAP4REV1" in log_in(wire, credentials, before)
        else:
            with pytest.raises(AuthenticationFailed):
                log_in(wire, credentials, before)
    finally:
        wire.close()
