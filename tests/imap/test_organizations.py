"""IMAP organizations through the API, against a real Dovecot (tests/imap_server.py): every
authentication and trust option, logins checked before anything is stored, secrets write-only
(never in a response, the catalog file or a log; a 0600 vault file, gone with the
organization), partial edits, and 400s naming the property in v2's and v8's error bodies."""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import ADMIN_PASSWORD, BASE_URL, START, Api, login
from tests.contract.openapi import spec
from tests.imap_server import MASTER_LOGIN, MASTER_PASSWORD, DovecotServer, free_port

from keepstone.api.app import create_app
from keepstone.clock import ManualClock
from keepstone.server import bootstrap, open_context
from keepstone.services import imap_logins, imap_settings
from keepstone.sources import imap

VERSIONS = (2, 8)
ALICE, BOB = "alice@example.org", "bob@example.org"


class NoPenaltyDovecot(DovecotServer):
    """The fixture's Dovecot without its per-address authentication penalty (2 to 15 s after
    each failed login, for every login from that address, the right ones too): these tests
    fail logins on purpose and must stay fast. Without the change they are only slower."""

    def _config(self) -> str:
        anvil = "service anvil {\n  chroot =\n"
        no_penalty = anvil + "  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n"
        return super()._config().replace(anvil, no_penalty)


@pytest.fixture(scope="module")
def server() -> Iterator[DovecotServer]:
    with NoPenaltyDovecot() as dovecot:
        yield dovecot


@dataclass(frozen=True)
class Mail:
    """The module's server and its two users' logins (fresh names: the server may be shared)."""

    server: DovecotServer
    alice: str
    bob: str

    def password(self, login: str) -> str:
        return self.server.passwords[login]

    @property
    def secrets(self) -> list[str]:
        return [self.password(self.alice), self.password(self.bob), MASTER_PASSWORD]


@pytest.fixture(scope="module")
def mail(server: DovecotServer) -> Mail:
    return Mail(server, server.add_user()[0], server.add_user()[0])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Path]]:
    """One server data directory and app for the module (each test names its own
    organizations and compares before and after, so they do not see each other)."""
    data_dir = tmp_path_factory.mktemp("imap-org") / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KEEPSTONE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        patch.delenv("KEEPSTONE_ADMIN_USER", raising=False)
        ctx = open_context(data_dir, ManualClock(START))
        bootstrap(ctx, data_dir)
    with TestClient(create_app(ctx), base_url=BASE_URL) as client:
        yield Api(client, login(client, "admin", ADMIN_PASSWORD)), data_dir
    ctx.db.dispose()


@pytest.fixture
def api(env: tuple[Api, Path]) -> Api:
    return env[0]


@pytest.fixture
def data_dir(env: tuple[Api, Path]) -> Path:
    return env[1]


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """An organization name unique to the test."""
    return f"org-{abs(hash(request.node.nodeid)):x}"


def users(mail: Mail, **bob: Any) -> list[dict[str, Any]]:
    return [
        {"name": ALICE, "login": mail.alice, "password": mail.password(mail.alice)},
        {"name": BOB, "login": mail.bob, "password": mail.password(mail.bob)} | bob,
    ]


def tls(mail: Mail, **settings: Any) -> dict[str, Any]:
    """``imapSettings`` for implicit TLS trusting the test CA, Password authentication."""
    return {
        "host": "127.0.0.1",
        "port": mail.server.tls_port,
        "security": "Tls",
        "caCertificate": mail.server.ca_pem,
        "verifyCertificate": True,
        "authentication": "Password",
        "users": users(mail),
    } | settings


def without(settings: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k not in names}


def org_body(settings: Any, name: str) -> dict[str, Any]:
    return {"type": "Imap", "name": name, "imapSettings": settings}


def create(api: Api, version: int, settings: Any, name: str) -> Any:
    return api.post(f"/v{version}/Organizations", org_body(settings, name))


def created(api: Api, version: int, settings: dict[str, Any], name: str) -> dict[str, Any]:
    response = create(api, version, settings, name)
    assert response.status_code == (201 if version >= 8 else 200), response.text
    body: dict[str, Any] = response.json()
    return body


def refused(response: Any, version: int, prop: str) -> str:
    """The 400 in the version's error body, naming ``prop`` first; its message."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["message"].startswith(prop), body
    assert ("errorCode" in body) == (version >= 8)
    message: str = body["message"]
    return message


def secret_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "secrets").glob("organization-*"))


def catalog_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob("keepstone.db*")))


def organization_ids(api: Api, version: int) -> list[str]:
    return [o["id"] for o in api.rows(f"/v{version}/Organizations")]


class NothingStored:
    """Asserts that a refused request left the organizations and the vault as they were."""

    def __init__(self, api: Api, data_dir: Path, version: int) -> None:
        self.api, self.data_dir, self.version = api, data_dir, version

    def __enter__(self) -> NothingStored:
        self.ids = organization_ids(self.api, self.version)
        self.files = {p: p.read_bytes() for p in secret_files(self.data_dir)}
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is None:
            assert organization_ids(self.api, self.version) == self.ids
            assert {p: p.read_bytes() for p in secret_files(self.data_dir)} == self.files


# ---- create, read, list -----------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_create_with_passwords_over_tls_shows_no_secret_and_lists_the_users(
    api: Api, mail: Mail, data_dir: Path, version: int, name: str
) -> None:
    org = created(api, version, tls(mail), name)
    assert org["type"] == ("Imap" if version == 2 else "OnPremises")
    shown = org["imapSettings"]
    assert shown["users"] == [
        {"name": ALICE, "login": mail.alice, "hasPassword": True},
        {"name": BOB, "login": mail.bob, "hasPassword": True},
    ]
    port = mail.server.tls_port
    assert (shown["host"], shown["port"], shown["security"]) == ("127.0.0.1", port, "Tls")
    assert shown["maxConnections"] == 4 and "localSettings" not in org
    fetched = api.get(f"/v{version}/Organizations/{org['id']}")
    assert fetched.json() == org
    assert org["id"] in organization_ids(api, version)
    listed = api.rows(f"/v{version}/Organizations/{org['id']}/Users")
    assert [u["name"] for u in listed] == [ALICE, BOB]
    for text in (fetched.text, api.get(f"/v{version}/Organizations").text):
        assert not any(secret in text for secret in mail.secrets)
    vault_file = data_dir / "secrets" / f"organization-{org['id']}"
    assert stat.S_IMODE(vault_file.stat().st_mode) == 0o600
    assert mail.password(mail.bob).encode() in vault_file.read_bytes()
    assert not any(secret.encode() in catalog_bytes(data_dir) for secret in mail.secrets)


def test_an_imap_organization_conforms_to_the_vendors_specs(
    api: Api, mail: Mail, name: str
) -> None:
    org = created(api, 8, tls(mail), name)
    for version in (6, 7, 8):
        users_path = f"/v{version}/Organizations/{org['id']}/Users"
        user = api.rows(users_path)[0]
        assert user["name"] == ALICE
        for path in (
            f"/v{version}/Organizations/{org['id']}",
            f"/v{version}/Organizations",
            users_path,
            f"{users_path}/{user['id']}",
        ):
            response = api.get(path)
            content_type = response.headers["content-type"]
            spec(version).check_response("get", path, 200, content_type, response.content)


def test_starttls_with_the_ca_and_cleartext_to_loopback(api: Api, mail: Mail, name: str) -> None:
    starttls = tls(mail, port=mail.server.port, security="StartTls")
    assert created(api, 8, starttls, name)["imapSettings"]["security"] == "StartTls"
    plain = without(tls(mail, port=mail.server.port, security="None"), "caCertificate")
    assert created(api, 2, plain, f"{name}-plain")["imapSettings"]["security"] == "None"


@pytest.mark.parametrize("version", VERSIONS)
def test_cleartext_to_a_remote_host_is_refused_without_the_flag(
    api: Api, mail: Mail, data_dir: Path, version: int, name: str
) -> None:
    settings = tls(mail, host="mail.example.org", security="None")
    with NothingStored(api, data_dir, version):
        refused(create(api, version, settings, name), version, "imapSettings.security:")


@pytest.mark.parametrize("version", VERSIONS)
def test_the_system_store_does_not_trust_the_test_ca(
    api: Api, mail: Mail, data_dir: Path, version: int, name: str
) -> None:
    settings = without(tls(mail), "caCertificate")
    with NothingStored(api, data_dir, version):
        response = create(api, version, settings, name)
        assert "TLS" in refused(response, version, "imapSettings.verifyCertificate:")


def test_a_pinned_fingerprint_right_and_wrong(
    api: Api, mail: Mail, data_dir: Path, name: str
) -> None:
    pinned = without(tls(mail), "caCertificate") | {
        "verifyCertificate": False,
        "certificateFingerprint": mail.server.cert_sha256.upper(),
    }
    org = created(api, 8, pinned, name)
    assert org["imapSettings"]["certificateFingerprint"] == mail.server.cert_sha256
    wrong = pinned | {"certificateFingerprint": "00" * 32}
    with NothingStored(api, data_dir, 8):
        response = create(api, 8, wrong, f"{name}-wrong")
        refused(response, 8, "imapSettings.certificateFingerprint:")
        unverified = without(wrong, "certificateFingerprint")
        refused(create(api, 2, unverified, name), 2, "imapSettings.verifyCertificate:")


def test_master_user_logs_every_user_in_without_their_passwords(
    api: Api, mail: Mail, data_dir: Path, name: str
) -> None:
    settings = tls(
        mail,
        authentication="MasterUser",
        masterUser={"login": MASTER_LOGIN, "password": MASTER_PASSWORD},
        users=[{"name": ALICE, "login": mail.alice}, {"name": mail.bob}],
    )
    org = created(api, 8, settings, name)
    shown = org["imapSettings"]
    assert shown["masterUser"] == {"login": MASTER_LOGIN, "separator": "*", "hasPassword": True}
    assert shown["users"] == [
        {"name": ALICE, "login": mail.alice},
        {"name": mail.bob, "login": mail.bob},
    ]
    assert MASTER_PASSWORD not in api.get(f"/v8/Organizations/{org['id']}").text
    assert MASTER_PASSWORD.encode() not in catalog_bytes(data_dir)
    wrong = settings | {"masterUser": {"login": MASTER_LOGIN, "password": "not-it-8d1e"}}
    with NothingStored(api, data_dir, 2):
        response = create(api, 2, wrong, f"{name}-wrong")
        refused(response, 2, "imapSettings.masterUser.password:")


# ---- what fails stores nothing ---------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_a_wrong_password_names_the_user_and_stores_nothing(
    api: Api,
    mail: Mail,
    data_dir: Path,
    version: int,
    name: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = tls(mail, users=users(mail, password="guessed-wrong-7c2e"))
    with NothingStored(api, data_dir, version):
        message = refused(
            create(api, version, wrong, name), version, "imapSettings.users[1].password:"
        )
    assert message == f"imapSettings.users[1].password: login failed for {BOB}"
    assert b"guessed-wrong-7c2e" not in catalog_bytes(data_dir)
    out, err = capfd.readouterr()
    logs = out + err + caplog.text + mail.server.log_tail(400)
    assert "POST" in out + err  # the access log was captured: the check below means something
    assert not any(secret in logs for secret in [*mail.secrets, "guessed-wrong-7c2e"])


@pytest.mark.parametrize("version", VERSIONS)
def test_an_unreachable_server_is_a_400_naming_the_host(
    api: Api, mail: Mail, data_dir: Path, version: int, name: str
) -> None:
    with NothingStored(api, data_dir, version):
        response = create(api, version, tls(mail, port=free_port()), name)
        assert "127.0.0.1" in refused(response, version, "imapSettings.host:")


# ---- edits and delete -------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_partial_edits_keep_passwords_and_a_wrong_new_password_changes_nothing(
    api: Api, mail: Mail, data_dir: Path, version: int, name: str
) -> None:
    org = created(api, version, tls(mail), name)
    path = f"/v{version}/Organizations/{org['id']}"
    ok = 204 if version >= 6 else 200
    vault_file = data_dir / "secrets" / f"organization-{org['id']}"
    kept = vault_file.read_bytes()

    edit = {"description": "mail", "imapSettings": {"maxConnections": "8"}}
    assert api.put(path, edit).status_code == ok
    after = api.get(path).json()
    assert after["description"] == "mail" and after["imapSettings"]["maxConnections"] == 8
    assert vault_file.read_bytes() == kept

    # The users list is replaced; a user sent again without a password keeps it.
    same = [{"name": ALICE, "login": mail.alice}, {"name": BOB, "login": mail.bob}]
    assert api.put(path, {"imapSettings": {"users": same}}).status_code == ok
    assert all(u["hasPassword"] for u in api.get(path).json()["imapSettings"]["users"])
    assert vault_file.read_bytes() == kept
    only_bob = {"imapSettings": {"users": [{"name": BOB, "login": mail.bob}]}}
    assert api.put(path, only_bob).status_code == ok
    assert [u["name"] for u in api.rows(f"{path}/Users")] == [BOB]

    before = api.get(path).json()
    new_password = {"name": BOB, "login": mail.bob, "password": "nope-51d0"}
    response = api.put(path, {"imapSettings": {"users": [new_password]}})
    refused(response, version, "imapSettings.users[0].password:")
    # A moved server is checked with the kept passwords, and refused when unreachable.
    moved = api.put(path, {"imapSettings": {"port": free_port()}})
    refused(moved, version, "imapSettings.host:")
    assert api.get(path).json() == before
    assert b"nope-51d0" not in vault_file.read_bytes()


def test_edits_name_bad_properties_and_cannot_change_the_type(
    api: Api, mail: Mail, name: str
) -> None:
    path = f"/v8/Organizations/{created(api, 8, tls(mail), name)['id']}"
    refused(api.put(path, {"type": "Local"}), 8, "type")
    refused(api.put(path, {"localSettings": {"path": "/tmp"}}), 8, "localSettings:")
    refused(api.put(path, {"imapSettings": {"port": 0}}), 8, "imapSettings.port:")
    refused(api.put(path, {"imapSettings": {"users": []}}), 8, "imapSettings.users:")


def test_delete_removes_the_secrets_file(api: Api, mail: Mail, data_dir: Path, name: str) -> None:
    org = created(api, 8, tls(mail), name)
    vault_file = data_dir / "secrets" / f"organization-{org['id']}"
    assert vault_file.exists()
    assert api.delete(f"/v8/Organizations/{org['id']}").status_code == 204
    assert not vault_file.exists()


# ---- bad bodies -------------------------------------------------------------------------------

BAD = [
    ({"host": None}, "imapSettings.host"),
    ({"port": 70000}, "imapSettings.port"),
    ({"port": 0}, "imapSettings.port"),
    ({"security": "Ssl"}, "imapSettings.security"),
    ({"authentication": "Kerberos"}, "imapSettings.authentication"),
    ({"users": []}, "imapSettings.users"),
    (
        {"users": [{"name": "a", "password": "p"}, {"name": "A", "password": "q"}]},
        "imapSettings.users[1].name",
    ),
    ({"users": [{"name": "a\u0007b", "password": "p"}]}, "imapSettings.users[0].name"),
    ({"users": [{"name": "a\nb", "password": "p"}]}, "imapSettings.users[0].name"),
    ({"maxConnections": 33}, "imapSettings.maxConnections"),
]


@pytest.mark.parametrize("version", VERSIONS)
def test_bad_bodies_are_400s_naming_the_property(
    api: Api, mail: Mail, data_dir: Path, version: int, name: str
) -> None:
    with NothingStored(api, data_dir, version):
        for change, prop in BAD:
            settings = {k: v for k, v in (tls(mail) | change).items() if v is not None}
            refused(create(api, version, settings, name), version, f"{prop}:")
        missing = api.post(f"/v{version}/Organizations", {"type": "imap", "name": name})
        refused(missing, version, "imapSettings:")
        not_an_object = create(api, version, "host=x", name)
        assert not_an_object.status_code == 400
        assert "imapSettings" in not_an_object.json()["message"]


# ---- parallel logins --------------------------------------------------------------------------


def test_logins_run_in_parallel_up_to_max_connections(server: DovecotServer) -> None:
    """Each user named is logged in once; never more than maxConnections at a time."""
    names = [server.add_user()[0] for _ in range(8)]
    settings = {
        "host": "127.0.0.1",
        "port": server.port,
        "security": "StartTls",
        "caCertificate": server.ca_pem,
        "maxConnections": 3,
        "users": [{"name": n, "password": server.passwords[n]} for n in names],
    }
    configured = imap_settings.parse(settings)
    active, peak, calls = 0, 0, []
    lock = threading.Lock()

    def counting(endpoint: imap.Endpoint, credentials: imap.Credentials) -> object:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
            calls.append(credentials.login)
        try:
            with imap.connect(endpoint, credentials):
                return None
        finally:
            with lock:
                active -= 1

    imap_logins.check_logins(configured, names, connect=counting)
    assert sorted(calls) == sorted(names) and 1 <= peak <= 3
    calls.clear()
    imap_logins.check_logins(configured, names[:2], connect=counting)
    assert sorted(calls) == sorted(names[:2])
