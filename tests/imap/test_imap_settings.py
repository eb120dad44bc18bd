"""``services.imap_settings.parse``: the ``imapSettings`` body rules, as properties (pure: no
server, no catalog). The API tests against a real Dovecot are in test_organizations.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trustme
from hypothesis import given
from hypothesis import strategies as st

from keepstone.domain.errors import InvalidInput
from keepstone.services import imap_settings
from keepstone.services.imap_logins import logins_to_check
from keepstone.services.imap_settings import (
    Authentication,
    Configured,
    parse,
)
from keepstone.sources.imap import PinnedCertificate, Security, SystemTrust, TrustedCa

NAMES = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="/\\"),
    min_size=1,
    max_size=20,
).filter(lambda n: n == n.strip() and n.strip(".") != "")
SECRETS = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\0"),
    min_size=1,
    max_size=30,
)
HOSTS = st.sampled_from(["mail.example.org", "127.0.0.1", "::1", "localhost", "10.0.0.7"])
SECURITY = st.sampled_from(["Tls", "tls", "StartTls", "STARTTLS"])
FINGERPRINT = "AB:" * 31 + "CD"


def body(**extra: Any) -> dict[str, Any]:
    return {
        "host": "mail.example.org",
        "users": [{"name": "alice@example.org", "login": "alice", "password": "pw-a"}],
    } | extra


def refused(value: Any, current: Configured | None = None) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse(value, current)
    return caught.value


@st.composite
def password_bodies(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(NAMES, min_size=1, max_size=6, unique_by=str.casefold))
    users = [{"name": n, "password": draw(SECRETS)} for n in names]
    for user in users:
        if draw(st.booleans()):
            user["login"] = draw(NAMES)
    result: dict[str, Any] = {"host": draw(HOSTS), "security": draw(SECURITY), "users": users}
    if draw(st.booleans()):
        result["port"] = draw(st.integers(1, 65535))
    if draw(st.booleans()):
        result["maxConnections"] = draw(st.integers(1, 32))
    if draw(st.booleans()):
        result |= {"certificateFingerprint": FINGERPRINT, "verifyCertificate": draw(st.booleans())}
    return result


@given(password_bodies())
def test_a_valid_body_round_trips_through_the_catalog_record_without_its_secrets(
    sent: dict[str, Any],
) -> None:
    configured = parse(sent)
    record = imap_settings.to_record(configured.settings)
    assert imap_settings.from_record(json.loads(json.dumps(record))) == configured.settings
    # The record does not depend on the passwords: no secret is in it, however it is written.
    others = sent | {"users": [u | {"password": "other"} for u in sent["users"]]}
    assert imap_settings.to_record(parse(others).settings) == record
    for user in sent["users"]:
        assert configured.secrets.passwords[user["name"]] == user["password"]
    decoded = imap_settings.decode_secrets(imap_settings.encode_secrets(configured.secrets))
    assert decoded == configured.secrets
    users = configured.settings.users
    assert [u.login for u in users] == [u.get("login", u["name"]) for u in sent["users"]]


@given(password_bodies())
def test_an_empty_edit_changes_nothing_and_tries_no_login(sent: dict[str, Any]) -> None:
    configured = parse(sent)
    assert parse({}, configured) == configured
    again = {"users": [{"name": u.name, "login": u.login} for u in configured.settings.users]}
    assert parse(again, configured) == configured  # a user sent without password keeps it
    assert logins_to_check(configured, parse(again, configured)) == []


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "host",
                        "port",
                        "security",
                        "users",
                        "name",
                        "password",
                        "authentication",
                        "masterUser",
                        "oauth",
                        "login",
                        "caCertificate",
                        "x",
                    ]
                ),
                inner,
                max_size=5,
            )
        ),
        max_leaves=12,
    )
)
def test_any_json_is_settings_or_a_400_naming_an_imap_settings_property(value: Any) -> None:
    try:
        parse(value)
    except InvalidInput as error:
        assert error.prop is not None and error.prop.startswith("imapSettings")
        assert error.message.startswith("imapSettings")


@given(st.sampled_from(["mail.example.org", "10.0.0.7", "192.168.1.1", "::ffff:10.0.0.1"]))
def test_cleartext_to_a_remote_host_needs_the_explicit_flag(host: str) -> None:
    error = refused(body(host=host, security="None"))
    assert error.prop == "imapSettings.security"
    allowed = parse(body(host=host, security="None", allowCleartext="true")).settings
    assert allowed.security is Security.NONE and allowed.port == 143


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST"])
def test_cleartext_to_loopback_is_allowed(host: str) -> None:
    assert parse(body(host=host, security="none")).settings.security is Security.NONE


def test_an_unverifiable_tls_connection_is_refused_and_a_pin_makes_it_verifiable() -> None:
    assert refused(body(verifyCertificate=False)).prop == "imapSettings.verifyCertificate"
    pinned = parse(body(verifyCertificate="false", certificateFingerprint=FINGERPRINT))
    assert imap_settings.trust_of(pinned.settings) == PinnedCertificate("abcd"[:2] * 31 + "cd")
    assert imap_settings.trust_of(parse(body()).settings) == SystemTrust()


@pytest.mark.parametrize(
    ("fingerprint", "ok"),
    [("ab" * 32, True), ("AB" * 32, True), ("ab" * 31, False), ("zz" * 32, False), ("", True)],
)
def test_fingerprints_are_sha256_hex(fingerprint: str, ok: bool) -> None:
    if ok:
        parse(body(certificateFingerprint=fingerprint))
    else:
        assert refused(body(certificateFingerprint=fingerprint)).prop == (
            "imapSettings.certificateFingerprint"
        )


def test_a_ca_that_is_not_pem_is_refused_and_not_both_trusts() -> None:
    assert refused(body(caCertificate="not a cert")).prop == "imapSettings.caCertificate"
    pem = self_signed_pem()
    assert imap_settings.trust_of(parse(body(caCertificate=pem)).settings) == TrustedCa(pem)
    both = refused(body(caCertificate=pem, certificateFingerprint=FINGERPRINT))
    assert both.prop == "imapSettings.certificateFingerprint"
    kept = parse(body(caCertificate=pem))
    switched = parse({"caCertificate": "", "certificateFingerprint": FINGERPRINT}, kept)
    assert switched.settings.ca_certificate is None


def self_signed_pem() -> str:
    return str(trustme.CA().cert_pem.bytes().decode("ascii"))


@pytest.mark.parametrize(
    ("sent", "prop"),
    [
        ({"users": [{"name": "a", "password": "p"}]}, "imapSettings.host"),
        (body(host=""), "imapSettings.host"),
        (body(host="imap://mail.example.org"), "imapSettings.host"),
        (body(host="mail example"), "imapSettings.host"),
        (body(port=0), "imapSettings.port"),
        (body(port=65536), "imapSettings.port"),
        (body(port="x"), "imapSettings.port"),
        (body(port=True), "imapSettings.port"),
        (body(security="Ssl"), "imapSettings.security"),
        (body(authentication="Kerberos"), "imapSettings.authentication"),
        (body(users=[]), "imapSettings.users"),
        (body(users="alice"), "imapSettings.users"),
        (body(users=None) | {"users": None}, "imapSettings.users"),
        (body(users=[{"login": "x", "password": "p"}]), "imapSettings.users[0].name"),
        (
            body(users=[{"name": "a", "password": "p"}, {"name": "A", "password": "q"}]),
            "imapSettings.users[1].name",
        ),
        (body(users=[{"name": "a\nb", "password": "p"}]), "imapSettings.users[0].name"),
        (body(users=[{"name": "a\x85b", "password": "p"}]), "imapSettings.users[0].name"),
        (body(users=[{"name": "a/b", "password": "p"}]), "imapSettings.users[0].name"),
        (body(users=[{"name": "..", "password": "p"}]), "imapSettings.users[0].name"),
        (body(users=[{"name": "a"}]), "imapSettings.users[0].password"),
        (
            body(users=[{"name": "a", "password": "p\r\nA2 DELETE INBOX"}]),
            "imapSettings.users[0].password",
        ),
        (body(maxConnections=0), "imapSettings.maxConnections"),
        (body(maxConnections=33), "imapSettings.maxConnections"),
        (body(authentication="MasterUser"), "imapSettings.masterUser.login"),
        (
            body(authentication="MasterUser", masterUser={"login": "m"}),
            "imapSettings.masterUser.password",
        ),
        (body(authentication="OAuth2"), "imapSettings.oauth.tokenUrl"),
        (
            body(
                authentication="OAuth2",
                oauth={
                    "tokenUrl": "http://login.example.org/t",
                    "clientId": "c",
                    "clientSecret": "s",
                },
            ),
            "imapSettings.oauth.tokenUrl",
        ),
        (
            body(
                authentication="OAuth2",
                oauth={
                    "tokenUrl": "https://u:p@login.example.org/t",
                    "clientId": "c",
                    "clientSecret": "s",
                },
            ),
            "imapSettings.oauth.tokenUrl",
        ),
        (
            body(
                authentication="OAuth2",
                oauth={"tokenUrl": "https://login.example.org/t", "clientSecret": "s"},
            ),
            "imapSettings.oauth.clientId",
        ),
        (
            body(
                authentication="OAuth2",
                oauth={"tokenUrl": "https://login.example.org/t", "clientId": "c"},
            ),
            "imapSettings.oauth.clientSecret",
        ),
    ],
)
def test_bad_bodies_name_the_property(sent: Any, prop: str) -> None:
    error = refused(sent)
    assert error.prop == prop, error.message
    assert "pw-a" not in error.message and "A2 DELETE" not in error.message


def test_names_and_keys_are_case_insensitive_and_enums_too() -> None:
    configured = parse(
        {
            "HOST": "Mail.Example.org",
            "Port": "993",
            "SECURITY": "tls",
            "authentication": "masteruser",
            "MasterUser": {"LOGIN": "backupmaster", "Password": "m-pw", "separator": "%"},
            "users": [{"NAME": "bob", "password": "ignored"}],
        }
    )
    settings = configured.settings
    assert (settings.host, settings.port, settings.authentication) == (
        "mail.example.org",
        993,
        Authentication.MASTER_USER,
    )
    assert settings.master_user == imap_settings.MasterLogin("backupmaster", "%")
    # With a master user the users' own passwords are not kept.
    assert configured.secrets == imap_settings.ImapSecrets(master_password="m-pw")


def test_an_edit_keeps_secrets_replaces_users_and_names_a_new_user_without_password() -> None:
    first = parse(body(users=[{"name": "a", "password": "pa"}, {"name": "b", "password": "pb"}]))
    edited = parse({"users": [{"name": "b"}, {"name": "c", "password": "pc"}], "port": 1993}, first)
    assert [u.name for u in edited.settings.users] == ["b", "c"]
    assert dict(edited.secrets.passwords) == {"b": "pb", "c": "pc"}
    assert edited.settings.port == 1993 and edited.settings.host == first.settings.host
    error = refused({"users": [{"name": "b"}, {"name": "d"}]}, first)
    assert error.prop == "imapSettings.users[1].password"


def test_which_logins_an_edit_tries() -> None:
    first = parse(body(users=[{"name": "a", "password": "pa"}, {"name": "b", "password": "pb"}]))
    new_password = parse({"users": [{"name": "a"}, {"name": "b", "password": "pb2"}]}, first)
    assert logins_to_check(first, new_password) == ["b"]
    added = parse({"users": [{"name": "a"}, {"name": "b"}, {"name": "c", "password": "x"}]}, first)
    assert logins_to_check(first, added) == ["c"]
    assert logins_to_check(first, parse({"port": 1993}, first)) == ["a", "b"]
    assert logins_to_check(first, parse({"maxConnections": 9}, first)) == []
    assert logins_to_check(None, first) == ["a", "b"]


def test_switching_authentication_drops_the_other_modes_secrets() -> None:
    first = parse(body())
    master = parse(
        {"authentication": "MasterUser", "masterUser": {"login": "m", "password": "mp"}}, first
    )
    assert master.secrets == imap_settings.ImapSecrets(master_password="mp")
    error = refused({"authentication": "Password"}, master)
    assert error.prop == "imapSettings.users[0].password"
