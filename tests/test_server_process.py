"""``keepstone serve`` as a real process: data directory, first start, restarts, locking, signals,
TLS, the plain-HTTP warning and Swagger.

Every test talks to a real server process over a real socket, on real files; nothing is mocked.
Servers that tests only observe are launched together at module start (the ``fleet``), so their
start-ups overlap; tests that stop or restart a server start their own.
"""

from __future__ import annotations

import ipaddress
import re
import signal
import socket
import sqlite3
import ssl
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keepstone.server import strict_tls
from tests.process_helpers import (
    ServerProcess,
    bearer,
    free_port,
    keepstone_command,
    login,
    process_env,
    start_server,
    token_response,
)

PASSWORD_LINE = re.compile(r"Created administrator '(?P<name>[^']+)' with password: (?P<pw>\S+)")
STOPPED = "Keepstone stopped"
# Several servers start at once on what may be a two-core machine: allow them longer.
FLEET_READY_TIMEOUT = 120.0
# Operators' data directories are often deep; messages must still name them intact.
LONG_NAME = "an-operators-rather-long-but-perfectly-ordinary-keepstone-data-directory"
ENV_ADMIN_USER, ENV_ADMIN_PASSWORD = "operator", "s3cret-enough"
PUBLIC_URL = "https://backup.public.example:9443"
EVIL_HOST = {"Host": "evil.example"}


def printed_password(server: ServerProcess) -> str:
    match = PASSWORD_LINE.search(server.stdout)
    assert match is not None, f"no generated password printed: {server.describe()}"
    return match["pw"]


def initial_password(data_dir: Path) -> str:
    return (data_dir / "initial-admin-password").read_text().strip()


@contextmanager
def admin_client(
    server: ServerProcess, password: str, user: str = "admin"
) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        client.headers.update(bearer(login(client, user, password)))
        yield client


def https_context(cafile: Path) -> ssl.SSLContext:
    """Trusts only ``cafile``, with host name checking on (the default)."""
    return ssl.create_default_context(cafile=str(cafile))


def served_certificate(port: int) -> x509.Certificate:
    pem = ssl.get_server_certificate(("127.0.0.1", port))
    return x509.load_pem_x509_certificate(pem.encode())


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, with its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keepstone-test-certificate")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "own-cert.pem", folder / "own-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


# ---- the fleet: servers launched together and only observed ------------------------------------


@dataclass(frozen=True)
class Fleet:
    root: Path
    servers: dict[str, ServerProcess]

    def ready(self, name: str) -> ServerProcess:
        server = self.servers[name]
        server.wait_ready(FLEET_READY_TIMEOUT)
        return server


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    logs = root / "logs"
    home = root / "home"
    home.mkdir()
    cert, key = make_certificate(root / "pki")
    launches: dict[str, tuple[Path | None, list[str], dict[str, str], bool]] = {
        # --data-dir wins over $KEEPSTONE_DATA_DIR, which points at a directory never created.
        "first": (
            root / LONG_NAME,
            [],
            process_env(home=home, KEEPSTONE_DATA_DIR=str(root / "not-this-one")),
            False,
        ),
        "env-data-dir": (
            None,
            [],
            process_env(home=root / "unused-home", KEEPSTONE_DATA_DIR=str(root / "from-env")),
            False,
        ),
        "home-default": (None, [], process_env(home=home), False),
        "env-admin": (
            root / "env-admin",
            [],
            process_env(
                KEEPSTONE_ADMIN_USER=ENV_ADMIN_USER, KEEPSTONE_ADMIN_PASSWORD=ENV_ADMIN_PASSWORD
            ),
            False,
        ),
        "plain-all-interfaces": (root / "plain-all", ["--host", "0.0.0.0"], process_env(), False),
        "tls-all-interfaces": (
            root / "tls-all",
            ["--host", "0.0.0.0", "--tls-self-signed"],
            process_env(),
            True,
        ),
        "own-cert": (
            root / "own-cert",
            ["--tls-cert", str(cert), "--tls-key", str(key)],
            process_env(),
            True,
        ),
    }
    servers: dict[str, ServerProcess] = {}
    try:
        for name, (data_dir, args, env, https) in launches.items():
            servers[name] = start_server(logs, data_dir, *args, env=env, https=https, wait=False)
        yield Fleet(root, servers)
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="module")
def first_start(fleet: Fleet) -> ServerProcess:
    """A first start on a fresh data directory given with --data-dir, admin password generated."""
    return fleet.ready("first")


@pytest.fixture(scope="module")
def admin(first_start: ServerProcess) -> Iterator[httpx.Client]:
    assert first_start.data_dir is not None
    with admin_client(first_start, initial_password(first_start.data_dir)) as client:
        yield client


def test_first_start_creates_wal_database_with_migrations(first_start: ServerProcess) -> None:
    assert first_start.data_dir is not None
    db_path = first_start.data_dir / "keepstone.db"
    assert db_path.is_file()
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        revisions = [row[0] for row in db.execute("SELECT version_num FROM alembic_version")]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert len(revisions) == 1 and revisions[0]
    assert {"users", "tokens"} <= tables


def test_first_start_registers_the_local_proxy_online(admin: httpx.Client) -> None:
    response = admin.get("/v2/Proxies")
    assert response.status_code == 200, response.text
    proxies = response.json()
    assert len(proxies) == 1
    assert proxies[0]["status"] == "Online"


def test_the_running_proxy_reports_the_load_of_its_host(admin: httpx.Client) -> None:
    """The proxy measures its host at every heartbeat; v8 shows the figures (a first read may
    come before the first tick of CPU time has passed: poll)."""
    deadline = time.monotonic() + 60
    while True:
        proxy = admin.get("/v8/Proxies").json()["results"][0]
        if proxy["cpuUsagePercent"] is not None:
            break
        assert time.monotonic() < deadline, "the proxy never reported its CPU use"
        time.sleep(0.1)
    assert 0.0 <= proxy["cpuUsagePercent"] <= 100.0
    assert 0.0 < proxy["memoryUsagePercent"] <= 100.0


def test_first_start_creates_the_default_repository(
    first_start: ServerProcess, admin: httpx.Client
) -> None:
    assert first_start.data_dir is not None
    response = admin.get("/v2/BackupRepositories")
    assert response.status_code == 200, response.text
    repos = response.json()
    assert len(repos) == 1
    repo = repos[0]
    assert Path(repo["path"]) == first_start.data_dir.resolve() / "repository"
    assert (first_start.data_dir / "repository").is_dir()
    assert repo["capacity"] > 0
    assert repo["freeSpace"] > 0
    assert repo["proxyId"] in {p["id"] for p in admin.get("/v2/Proxies").json()}


def test_first_start_prints_a_generated_admin_password_and_keeps_a_private_copy(
    first_start: ServerProcess,
) -> None:
    assert first_start.data_dir is not None
    password = printed_password(first_start)
    match = PASSWORD_LINE.search(first_start.stdout)
    assert match is not None and match["name"] == "admin"
    assert len(password) >= 16
    assert first_start.stdout.count(password) == 1
    assert password not in first_start.stderr
    password_file = first_start.data_dir / "initial-admin-password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert initial_password(first_start.data_dir) == password
    with httpx.Client(base_url=first_start.base_url, timeout=60) as client:
        response = token_response(client, "admin", password)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "bearer" and body["userName"] == "admin"
        assert client.get("/v2/Jobs", headers=bearer(body["access_token"])).status_code == 200


def test_data_dir_option_wins_over_the_environment_variable(fleet: Fleet) -> None:
    fleet.ready("first")
    assert not (fleet.root / "not-this-one").exists()


def test_swagger_ui_is_served_with_local_assets(first_start: ServerProcess) -> None:
    with httpx.Client(base_url=first_start.base_url, timeout=60) as client:
        page = client.get("/swagger")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "SwaggerUIBundle" in page.text
        assets = re.findall(r"""(?:href|src)=["']([^"']+)["']""", page.text)
        assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
        assert all(a.startswith("/swagger/static/") for a in assets), assets  # offline: no CDN
        for asset in assets:
            response = client.get(asset)
            assert response.status_code == 200, asset
            assert response.content, asset


def test_openapi_document_lists_the_job_route(first_start: ServerProcess) -> None:
    with httpx.Client(base_url=first_start.base_url, timeout=60) as client:
        response = client.get("/swagger/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert "/v2/Jobs/{job_id}" in document["paths"]
    assert "/v2/Token" in document["paths"]


def test_a_websocket_upgrade_is_answered_as_http_and_writes_no_advice(
    first_start: ServerProcess,
) -> None:
    """No route is a WebSocket and uvicorn runs without WebSocket support (``ws="none"``): an
    upgrade request is an ordinary request (here refused for its missing token), and the advice
    to install a WebSocket library, which uvicorn logs at each one, is kept out of the log."""
    request = (
        b"GET /v2/Jobs HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", first_start.port), timeout=60) as peer:
        peer.sendall(request)
        status = peer.recv(64).split()[1]
    assert status == b"401"
    assert "Unsupported upgrade request" in first_start.stderr  # reached uvicorn's check
    assert "WebSocket library" not in first_start.stderr


def test_a_second_server_on_the_same_data_dir_refuses_to_start(first_start: ServerProcess) -> None:
    assert first_start.data_dir is not None
    command = keepstone_command(
        "serve", "--port", str(free_port()), "--data-dir", str(first_start.data_dir)
    )
    try:
        second = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            env=process_env(),
        )
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(f"a second server did not refuse to start; it kept running: {timeout.output!r}")
    output = second.stdout + second.stderr
    assert second.returncode != 0, output
    assert "already" in output and "Traceback" not in output, output
    # The whole path, as one copyable string (not folded across lines).
    assert str(first_start.data_dir) in output, (
        f"the message does not name {first_start.data_dir} intact:\n{output}"
    )
    # The first server is unaffected.
    assert first_start.process.poll() is None
    with httpx.Client(base_url=first_start.base_url, timeout=60) as client:
        assert client.get("/swagger/openapi.json").status_code == 200


def test_loopback_plain_http_does_not_warn(first_start: ServerProcess) -> None:
    assert "WARNING" not in first_start.stdout


# ---- where the data directory is ------------------------------------------------------------


def test_data_dir_comes_from_the_environment_variable(fleet: Fleet) -> None:
    server = fleet.ready("env-data-dir")
    data_dir = fleet.root / "from-env"
    assert (data_dir / "keepstone.db").is_file()
    assert initial_password(data_dir) == printed_password(server)
    assert not (fleet.root / "unused-home" / ".local").exists()
    assert str(data_dir) in server.stdout


def test_data_dir_defaults_to_local_share_under_home(fleet: Fleet) -> None:
    server = fleet.ready("home-default")
    data_dir = fleet.root / "home" / ".local" / "share" / "keepstone"
    assert (data_dir / "keepstone.db").is_file()
    assert initial_password(data_dir) == printed_password(server)


# ---- administrator from the environment ---------------------------------------------------------


def test_admin_user_and_password_come_from_the_environment(fleet: Fleet) -> None:
    server = fleet.ready("env-admin")
    assert server.data_dir is not None
    assert "Created administrator" not in server.stdout
    assert ENV_ADMIN_PASSWORD not in server.output
    assert not (server.data_dir / "initial-admin-password").exists()
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        token = login(client, ENV_ADMIN_USER, ENV_ADMIN_PASSWORD)
        assert client.get("/v2/Jobs", headers=bearer(token)).status_code == 200
        assert token_response(client, "admin", ENV_ADMIN_PASSWORD).status_code == 400


# ---- TLS and the plain-HTTP warning -------------------------------------------------------------


def test_tls_self_signed_serves_https_verifiable_against_the_kept_certificate(fleet: Fleet) -> None:
    server = fleet.ready("tls-all-interfaces")
    assert server.data_dir is not None
    cert_path = server.data_dir / "tls" / "cert.pem"
    key_path = server.data_dir / "tls" / "key.pem"
    assert cert_path.is_file() and key_path.is_file()
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert "https://" in server.stdout
    assert served_certificate(server.port) == x509.load_pem_x509_certificate(cert_path.read_bytes())
    # The certificate names localhost and 127.0.0.1, so it verifies as its own trust anchor.
    for host in ("127.0.0.1", "localhost"):
        with httpx.Client(verify=https_context(cert_path), timeout=60) as client:
            response = client.get(f"https://{host}:{server.port}/swagger/openapi.json")
            assert response.status_code == 200
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{server.port}/swagger/openapi.json", timeout=60)


def test_tls_on_a_non_loopback_address_does_not_warn(fleet: Fleet) -> None:
    server = fleet.ready("tls-all-interfaces")
    assert "WARNING" not in server.stdout, server.describe()
    assert "plain HTTP" not in server.output


def test_plain_http_on_a_non_loopback_address_warns(fleet: Fleet) -> None:
    server = fleet.ready("plain-all-interfaces")
    warnings = [line for line in server.stdout.splitlines() if "WARNING" in line]
    assert warnings, server.describe()
    assert "0.0.0.0" in warnings[0]
    with httpx.Client(timeout=60) as client:  # and it does serve plain HTTP
        assert client.get(f"{server.base_url}/swagger/openapi.json").status_code == 200


def test_tls_with_an_own_certificate_serves_that_certificate(fleet: Fleet) -> None:
    server = fleet.ready("own-cert")
    assert server.data_dir is not None
    cert_path = fleet.root / "pki" / "own-cert.pem"
    assert served_certificate(server.port) == x509.load_pem_x509_certificate(cert_path.read_bytes())
    with httpx.Client(verify=https_context(cert_path), timeout=60) as client:
        assert client.get(f"{server.base_url}/swagger/openapi.json").status_code == 200
    assert not (server.data_dir / "tls").exists()


def tls_client(version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client speaking exactly ``version``, with every cipher this OpenSSL still has, so that
    only the server can be the one refusing an old protocol."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = version
    return context


def handshake(port: int, version: ssl.TLSVersion) -> str:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=60) as raw,
        tls_client(version).wrap_socket(raw) as tls,
    ):
        return tls.version() or ""


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_below_1_2_is_refused_by_the_server(fleet: Fleet, tmp_path: Path) -> None:
    server = fleet.ready("tls-all-interfaces")
    assert handshake(server.port, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert handshake(server.port, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    with pytest.raises(ssl.SSLError) as refused:
        handshake(server.port, ssl.TLSVersion.TLSv1_1)
    # The refusal is the server's: this client does complete TLS 1.1 with a server that allows it.
    assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1 is deprecated:DeprecationWarning")
def test_the_server_sets_its_own_tls_floor_whatever_the_default(fleet: Fleet) -> None:
    """``strict_tls`` raises the floor of a context whose default would allow TLS 1.0."""
    cert, key = fleet.root / "pki" / "own-cert.pem", fleet.root / "pki" / "own-key.pem"

    def permissive() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.load_cert_chain(cert, key)
        return context

    config = uvicorn.Config(lambda: None, ssl_certfile=str(cert), ssl_keyfile=str(key))
    assert strict_tls(config, permissive).minimum_version == ssl.TLSVersion.TLSv1_2


def test_https_answers_carry_hsts_and_a_secure_httponly_session_cookie(fleet: Fleet) -> None:
    server = fleet.ready("tls-all-interfaces")
    assert server.data_dir is not None
    credentials = ("admin", initial_password(server.data_dir))
    with httpx.Client(base_url=server.base_url, verify=False, timeout=60) as client:
        logon = client.post("/api/sessionMngr/?v=latest", auth=credentials)
        assert logon.status_code == 201, logon.text
        cookie = logon.headers["set-cookie"]
        assert all(flag in cookie for flag in ("; Secure", "; HttpOnly", "; SameSite=Strict"))
        assert logon.headers["cache-control"] == "no-store"
        assert logon.headers["strict-transport-security"].startswith("max-age=")
        for answer in (logon, client.get("/v2/no-such-thing")):
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["x-frame-options"] == "DENY"
            assert "server" not in answer.headers  # uvicorn's name is not told


def test_links_use_the_bound_address_not_the_host_header(first_start: ServerProcess) -> None:
    assert first_start.data_dir is not None
    with admin_client(first_start, initial_password(first_start.data_dir)) as client:
        answer = client.get("/v5/BackupRepositories", headers=EVIL_HOST)  # v5: absolute links
    assert "evil.example" not in answer.text
    assert answer.json()[0]["_links"]["self"]["href"].startswith(f"{first_start.base_url}/v5/")


def test_links_use_the_configured_public_url(tmp_path: Path) -> None:
    env = process_env(KEEPSTONE_PUBLIC_URL=PUBLIC_URL + "/")
    server = start_server(
        tmp_path / "logs", tmp_path / "data", env=env, ready_timeout=FLEET_READY_TIMEOUT
    )
    try:
        password = initial_password(tmp_path / "data")
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            token = login(client, "admin", password)
            answer = client.get("/v5/BackupRepositories", headers=EVIL_HOST | bearer(token))
            logon = client.post("/api/sessionMngr/?v=latest", auth=("admin", password))
    finally:
        server.stop()
    assert answer.json()[0]["_links"]["self"]["href"].startswith(f"{PUBLIC_URL}/v5/")
    assert logon.headers["location"].startswith(f"{PUBLIC_URL}/api/logonSessions/")


def test_a_malformed_public_url_stops_the_start(tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "logs", tmp_path / "data", "--public-url", "ftp://x/", wait=False
    )
    try:
        assert server.process.wait(timeout=30) == 1
        assert "public URL 'ftp://x/'" in server.output
    finally:
        server.stop()


# ---- restarts and stopping (each test runs its own servers) ----------------------------------


def test_a_restart_reuses_catalog_credentials_and_certificate(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    cert_path = data_dir / "tls" / "cert.pem"
    first = start_server(tmp_path / "logs", data_dir, "--tls-self-signed", https=True)
    try:
        password = printed_password(first)
        password_file = data_dir / "initial-admin-password"
        before = password_file.stat()
        first_cert = cert_path.read_bytes()
        with httpx.Client(
            base_url=first.base_url, verify=https_context(cert_path), timeout=60
        ) as client:
            client.headers.update(bearer(login(client, "admin", password)))
            repos = client.get("/v2/BackupRepositories").json()
            proxies = client.get("/v2/Proxies").json()
    finally:
        first.stop()

    second = start_server(tmp_path / "logs", data_dir, "--tls-self-signed", https=True)
    try:
        assert "Created administrator" not in second.stdout
        assert password not in second.output
        after = password_file.stat()
        assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
            before.st_ino,
            before.st_mtime_ns,
            before.st_size,
        )
        assert initial_password(data_dir) == password
        assert cert_path.read_bytes() == first_cert
        assert served_certificate(second.port) == x509.load_pem_x509_certificate(first_cert)
        with httpx.Client(
            base_url=second.base_url, verify=https_context(cert_path), timeout=60
        ) as client:
            client.headers.update(bearer(login(client, "admin", password)))
            assert [r["id"] for r in client.get("/v2/BackupRepositories").json()] == [
                r["id"] for r in repos
            ]
            again = client.get("/v2/Proxies").json()
            assert [p["id"] for p in again] == [p["id"] for p in proxies]
            assert again[0]["status"] == "Online"
    finally:
        second.stop()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_server_cleanly_and_releases_the_data_dir(
    tmp_path: Path, signum: signal.Signals
) -> None:
    data_dir = tmp_path / "data"
    server = start_server(tmp_path / "logs", data_dir)
    try:
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            assert client.get("/api/").status_code == 200
        code = server.send(signum)
        assert code is not None, f"server still running 10 s after {signum.name}"
        problems = []
        if code != 0:
            problems.append(f"exit code {code}, expected 0")
        if STOPPED not in server.stdout:
            problems.append(f"{STOPPED!r} not printed")
        assert not problems, f"after {signum.name}: {'; '.join(problems)}\n{server.describe()}"
    finally:
        server.stop()

    again = start_server(tmp_path / "logs", data_dir)
    try:
        assert "Created administrator" not in again.stdout
        with httpx.Client(base_url=again.base_url, timeout=60) as client:
            assert client.get("/api/").status_code == 200
    finally:
        again.stop()


# ---- the scheduler and the proxy inside the real server ------------------------------------------


def test_the_server_schedules_and_runs_jobs(
    admin: httpx.Client, first_start: ServerProcess, tmp_path: Path
) -> None:
    """A job due in two seconds is queued by the server's scheduler within a second of its time,
    and its proxy thread runs it: a real backup of the (empty) organization, one restore point."""
    org_dir = tmp_path / "org"
    org_dir.mkdir()
    org = admin.post(
        "/v2/Organizations",
        json={"type": "Local", "name": "scheduled.test", "localSettings": {"path": str(org_dir)}},
    ).json()
    repo = admin.get("/v2/BackupRepositories").json()[0]
    job = admin.post(
        f"/v2/Organizations/{org['id']}/Jobs",
        json={"name": "soon", "repositoryId": repo["id"], "schedulePolicy": {"type": "ManualOnly"}},
    ).json()
    assert first_start.data_dir is not None
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    with sqlite3.connect(first_start.data_dir / "keepstone.db") as db:  # as if its slot came
        db.execute(
            "UPDATE jobs SET next_run = ? WHERE id = ?",
            (due.replace(tzinfo=None).isoformat(sep=" "), job["id"]),
        )
    deadline = time.monotonic() + 60
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not (runs and runs[0]["status"] == "Success"):
        time.sleep(0.1)
        runs = admin.get(f"/v2/Jobs/{job['id']}/JobSessions").json()
    [run] = runs
    assert run["status"] == "Success"
    created = datetime.fromisoformat(run["creationTime"].replace("Z", "+00:00"))
    # at its slot, not a scheduler interval or a minute late (a loaded machine adds seconds)
    assert timedelta(0) <= created - due < timedelta(seconds=10)
    titles = [i["title"] for i in admin.get(f"/v2/JobSessions/{run['id']}/LogItems").json()]
    assert titles[-1].startswith("[Success] Backup finished: 0 users")
    assert len(admin.get(f"/v2/RestorePoints?jobId={job['id']}").json()) == 1
    assert admin.get(f"/v2/Jobs/{job['id']}").json()["nextRun"] is None  # ManualOnly again
