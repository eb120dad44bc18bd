"""A real Dovecot for tests and benchmarks: rootless, private config, loopback ports.

``DovecotServer`` starts Debian's ``/usr/sbin/dovecot`` in the foreground with its own config in
a temporary directory: passwd-file users, Maildir (``mail_fsync = never``: tests only), a plain +
STARTTLS listener and an implicit-TLS listener, both on free loopback ports, certificates from a
``trustme`` test CA, and a master user (``user*backupmaster``). Dovecot's login processes refuse
to run as root, so as root the whole instance runs as ``nobody`` (``setpriv``); as a normal user
it runs as that user.

Variants: ``default`` (CONDSTORE, QRESYNC, SPECIAL-USE folders, separator ``/``), ``minimal``
(the capability list of a server without CONDSTORE, QRESYNC, LIST-STATUS, ESEARCH, MULTIAPPEND,
as Microsoft 365 or Yahoo), ``dot`` (hierarchy separator ``.``), ``prefixed`` (separator ``.``
and every folder below the personal namespace prefix ``INBOX.``, as Courier and Cyrus),
``oauth2`` (XOAUTH2 checked against a local token introspection server, see
``tests/oauth_server.py``).

``WireTap`` is a TCP relay to put between a client and the server: it counts the client's
commands and the bytes each way, and can cut or stall the connection on demand.
"""

from __future__ import annotations

import contextlib
import hashlib
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from imapclient import IMAPClient

from keepstone.sources.imap import (
    Endpoint,
    MasterUser,
    Password,
    Security,
    Timeouts,
    Trust,
    TrustedCa,
)
from tests.oauth_server import OAuthServer

DOVECOT = Path("/usr/sbin/dovecot")
DOVEADM = Path("/usr/bin/doveadm")
MASTER_LOGIN = "backupmaster"
MASTER_PASSWORD = "master-secret-pw"
MASTER_SEPARATOR = "*"
SPECIAL_FOLDERS = {
    "Sent": "\\Sent",
    "Drafts": "\\Drafts",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
}
# What a server without change tracking advertises (Dovecot's own list minus the extensions,
# and minus LITERAL+ so that synchronizing literals are exercised too).
MINIMAL_CAPABILITIES = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES "
    "THREAD=REFS THREAD=ORDEREDSUBJECT NAMESPACE UIDPLUS MOVE SPECIAL-USE UNSELECT "
    "CHILDREN I18NLEVEL=1 WITHIN ESORT SEARCHRES LIST-EXTENDED"
)
START_DEADLINE = 60.0

Seeded = tuple[bytes, Sequence[str], datetime | None]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, deadline: float, process: subprocess.Popen[bytes] | None) -> None:
    """Wait until something accepts on ``127.0.0.1:port`` (generous deadline: shared CI)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {deadline} s")


@dataclass(frozen=True)
class RunAs:
    """The unprivileged account the instance runs as (``nobody`` when the tests run as root)."""

    user: str
    group: str
    uid: int
    gid: int

    @classmethod
    def current(cls) -> RunAs:
        account = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
        group = _group_name(account.pw_gid)
        return cls(account.pw_name, group, account.pw_uid, account.pw_gid)

    def prefix(self) -> list[str]:
        """``setpriv``: as root, drop to this account; always, end Dovecot with its parent (a
        killed test run leaves no server behind)."""
        orphan = ["setpriv", "--pdeathsig", "TERM"]
        if os.geteuid() != 0:
            return orphan
        return [*orphan, f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups"]


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


@dataclass
class DovecotServer:
    """One Dovecot instance; ``start()`` then ``stop()`` (or use it as a context manager)."""

    variant: str = "default"  # default, minimal, dot, prefixed, oauth2
    separator: str = "/"
    ca: trustme.CA = field(default_factory=trustme.CA)
    oauth: OAuthServer | None = None  # the oauth2 variant's token authority
    host: str = "127.0.0.1"
    port: int = 0  # plain + STARTTLS
    tls_port: int = 0  # implicit TLS
    root: Path = field(default_factory=Path)
    passwords: dict[str, str] = field(default_factory=dict)
    _process: subprocess.Popen[bytes] | None = None
    _run_as: RunAs | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _counter: int = 0

    # ----- lifecycle -----

    def start(self) -> DovecotServer:
        if not DOVECOT.exists():
            raise RuntimeError(
                "Dovecot is not installed: run scripts/test (installs dovecot-imapd)"
            )
        if self.variant in ("dot", "prefixed"):
            self.separator = "."
        if self.variant == "oauth2":
            self.oauth = OAuthServer().start()
        self._run_as = RunAs.current()
        for _ in range(3):
            if self._launch():
                return self
        self.stop()
        raise RuntimeError("Dovecot found no free port in 3 attempts")

    def _launch(self) -> bool:
        """Start on fresh free ports; False when one was taken meanwhile (try again)."""
        assert self._run_as is not None
        self.root = Path(tempfile.mkdtemp(prefix=f"ks-dovecot-{self.variant}-"))
        self.port, self.tls_port = free_port(), free_port()
        self._write_files()
        self._process = subprocess.Popen(
            [*self._run_as.prefix(), str(DOVECOT), "-F", "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "stderr.log").open("wb"),
            start_new_session=True,
        )
        try:
            wait_for_port(self.port, START_DEADLINE, self._process)
            wait_for_port(self.tls_port, START_DEADLINE, self._process)
        except Exception as error:
            log = self.log_tail()
            self._halt()
            if "Address already in use" in log:
                return False
            self.stop()
            raise RuntimeError(f"Dovecot did not start: {error}\n{log}") from error
        return True

    def stop(self) -> None:
        if self.oauth is not None:
            self.oauth.stop()
            self.oauth = None
        self._halt()

    def _halt(self) -> None:
        """Stop the instance (its master stops every child) and remove its directory."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                # the master did not stop its children in time: end its whole process group
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        if self.root != Path() and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        texts = []
        for name in ("dovecot.log", "stderr.log"):
            path = self.root / name
            if path.exists():
                texts.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(texts)

    # ----- TLS material -----

    @property
    def config_path(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def ca_pem(self) -> str:
        return self.ca.cert_pem.bytes().decode("ascii")

    @property
    def cert_sha256(self) -> str:
        """Hex SHA-256 of the server certificate's DER (what ``PinnedCertificate`` holds)."""
        return hashlib.sha256(self._cert_der).hexdigest()

    def endpoint(
        self, security: Security = Security.TLS, trust: Trust | None = None, **timeouts: float
    ) -> Endpoint:
        """The adapter's endpoint for this server: implicit TLS on ``tls_port``, else the plain
        port (STARTTLS or cleartext); trusting the test CA unless told otherwise."""
        port = self.tls_port if security is Security.TLS else self.port
        return Endpoint(
            self.host, port, security, trust or TrustedCa(self.ca_pem), Timeouts(**timeouts)
        )

    def credentials(self, user: str) -> Password:
        return Password(user, self.passwords[user])

    def master(self, user: str) -> MasterUser:
        return MasterUser(user, MASTER_LOGIN, MASTER_PASSWORD, MASTER_SEPARATOR)

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    # ----- users -----

    def add_user(self, name: str | None = None, password: str | None = None) -> tuple[str, str]:
        """A fresh user (a unique name when none is given), usable at once (its own passwd-file).
        Any password without ``:`` or a line break (the passwd-file syntax)."""
        with self._lock:
            self._counter += 1
            name = name or f"user{self._counter}"
            password = password or f"pw-{name}-{os.urandom(4).hex()}"
            if name in self.passwords or not re.fullmatch(r"[A-Za-z0-9._@+-]+", name):
                raise ValueError(f"bad or duplicate test user name {name!r}")
            if re.search(r"[:\r\n\0]", password):
                raise ValueError("a test password cannot hold ':' or a line break")
            self.passwords[name] = password
            self._write_users()
        return name, password

    def client(self, user: str, tls: bool = False) -> IMAPClient:
        """A logged-in IMAPClient for the test's own checks (plain, or TLS with the test CA)."""
        if tls:
            client = IMAPClient(self.host, self.tls_port, ssl_context=self.client_context())
        else:
            client = IMAPClient(self.host, self.port, ssl=False)
        client.login(user, self.passwords[user])
        return client

    def folder_name(self, *parts: str) -> str:
        """The server's name of a folder (parts joined by this server's separator)."""
        return self.separator.join(parts)

    def seed(self, user: str, folder: str, messages: Sequence[Seeded], batch: int = 500) -> None:
        """Store ``messages`` (body, flags, INTERNALDATE) in ``folder`` (created if missing),
        in MULTIAPPEND batches (Dovecot accepts them even when it does not advertise them)."""
        with self.client(user) as client:
            if folder.upper() != "INBOX" and not client.folder_exists(folder):
                client.create_folder(folder)
            for start in range(0, len(messages), batch):
                _multiappend(client, folder, list(messages[start : start + batch]))

    def reset_uidvalidity(self, user: str, folder: str) -> None:
        """Forget a folder's UIDs (as a server migration does): a new UIDVALIDITY, new UIDs."""
        self.kick(user)
        directory = self.folder_dir(user, folder)
        for path in directory.iterdir():
            if path.name.startswith("dovecot") and path.is_file():
                path.unlink()
        # a later second than the old UIDVALIDITY (Dovecot derives it from the clock)
        time.sleep(1.1)

    def folder_dir(self, user: str, folder: str) -> Path:
        maildir = self.root / "mail" / user / "Maildir"
        if folder.upper() == "INBOX":
            return maildir
        if self.separator == "/":  # LAYOUT=fs
            return maildir.joinpath(*folder.split("/"))
        if self.variant == "prefixed":
            folder = folder.removeprefix("INBOX.")
        return maildir / ("." + folder)  # Maildir++

    def kick(self, user: str) -> None:
        """Drop every connection of ``user`` (none is fine)."""
        self.doveadm("kick", user)

    def kick_connected(self, user: str, within: float = 60.0) -> None:
        """Drop ``user``'s connection and return once it is gone. Dovecot lists a connection
        a moment after its login (a kick before then finds none: doveadm's 68, and the
        connection lives on), and its process goes a moment after the kick (a command sent
        meanwhile may still be answered): so kick until one is found, then until none is."""
        deadline = time.monotonic() + within
        for wanted in (0, 68):
            while self._doveadm("kick", user).returncode != wanted:
                if time.monotonic() > deadline:
                    raise AssertionError(f"kicking {user}: doveadm never answered {wanted}")
                time.sleep(0.05)

    def doveadm(self, *args: str) -> str:
        result = self._doveadm(*args)
        if result.returncode not in (0, 68):  # 68: kick found no connection
            raise RuntimeError(f"doveadm {args} failed: {result.stderr.decode(errors='replace')}")
        return result.stdout.decode(errors="replace")

    def _doveadm(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [str(DOVEADM), "-c", str(self.config_path), *args],
            capture_output=True,
            timeout=60,
            check=False,
        )

    # ----- files -----

    def _write_files(self) -> None:
        assert self._run_as is not None
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir()
        leaf = self.ca.issue_cert("localhost", "127.0.0.1")
        leaf.private_key_and_cert_chain_pem.write_to_path(str(self.root / "server.pem"))
        self._cert_der = x509.load_pem_x509_certificate(
            leaf.cert_chain_pems[0].bytes()
        ).public_bytes(Encoding.DER)
        (self.root / "masters").write_text(f"{MASTER_LOGIN}:{{PLAIN}}{MASTER_PASSWORD}\n")
        self._write_users()
        self.config_path.write_text(self._config())
        for path in [self.root, *self.root.rglob("*")]:
            os.chown(path, self._run_as.uid, self._run_as.gid)
        (self.root / "server.pem").chmod(0o600)

    def _write_users(self) -> None:
        """One passwd-file per user (``users/%u``): a new user is a file Dovecot never read,
        so no reload timing matters (a shared file is re-read only when its stat changes)."""
        users = self.root / "users"
        users.mkdir(exist_ok=True)
        for name, password in self.passwords.items():
            path = users / name
            if not path.exists():
                temp = users / f".{name}.tmp"
                temp.write_text(f"{name}:{{PLAIN}}{password}\n")
                if self._run_as is not None:
                    os.chown(temp, self._run_as.uid, self._run_as.gid)
                temp.replace(path)

    def _config(self) -> str:
        assert self._run_as is not None
        run = self._run_as
        d = self.root
        layout = ":LAYOUT=fs" if self.separator == "/" else ""
        mailboxes = "".join(
            f"  mailbox {name} {{\n    special_use = {flag}\n    auto = subscribe\n  }}\n"
            for name, flag in SPECIAL_FOLDERS.items()
        )
        capability = (
            f"imap_capability = {MINIMAL_CAPABILITIES}\n" if self.variant == "minimal" else ""
        )
        # "prefixed": every folder below INBOX (Courier's and Cyrus's way)
        prefix = "  prefix = INBOX.\n" if self.variant == "prefixed" else ""
        return f"""\
protocols = imap
listen = 127.0.0.1
instance_name = ks-imap-{self.port}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = yes
ssl_cert = <{d}/server.pem
ssl_key = <{d}/server.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login{" xoauth2 oauthbearer" if self.oauth else ""}
auth_master_user_separator = {MASTER_SEPARATOR}
auth_failure_delay = 0
default_internal_user = {run.user}
default_internal_group = {run.group}
default_login_user = {run.user}
first_valid_uid = {min(run.uid, 500)}
mail_fsync = never
mail_location = maildir:~/Maildir{layout}
{capability}service anvil {{
  chroot =
  # no auth penalty (growing delays after failed logins from one address): the tests log in
  # wrongly on purpose; the auth process cannot open this socket and so skips the penalty
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}
}}
service doveadm {{
  unix_listener doveadm-server {{
    mode = 0666
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/masters
  master = yes
  result_success = continue
}}
{self._user_passdb()}
userdb {{
  driver = static
  args = uid={run.uid} gid={run.gid} home={d}/mail/%u allow_all_users=yes
}}
namespace inbox {{
  inbox = yes
  separator = {self.separator}
{prefix}
{mailboxes}}}
"""

    def _user_passdb(self) -> str:
        d = self.root
        files = f"passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {d}/users/%u\n}}\n"
        if self.oauth is None:
            return files
        (d / "oauth2.conf").write_text(
            f"introspection_mode = post\nintrospection_url = {self.oauth.introspection_url}\n"
            # application tokens: the authority names the client, valid for every mailbox
            f"username_attribute = client\nusername_format = {self.oauth.client_id}\n"
            "active_attribute = active\nactive_value = true\n"
        )
        oauth = "  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
        return files + f"passdb {{\n{oauth}  args = {d}/oauth2.conf\n}}\n"


def _multiappend(client: IMAPClient, folder: str, chunk: list[Seeded]) -> None:
    """One MULTIAPPEND with LITERAL+ in a single send (Dovecot accepts it even where it does
    not advertise MULTIAPPEND), through IMAPClient's imaplib: independent of the adapter."""
    imap = client._imap
    tag = imap._new_tag()
    parts = [tag, b" APPEND ", _quote_ascii(folder)]
    for body, flags, date in chunk:
        parts.append(b" (" + " ".join(flags).encode("ascii") + b")")
        if date is not None:
            parts.append(b" " + imaplib.Time2Internaldate(date).encode("ascii"))
        parts += [b" {%d+}\r\n" % len(body), body]
    parts.append(b"\r\n")
    imap.tagged_commands[tag] = None
    imap.send(b"".join(parts))
    status, data = imap._command_complete("APPEND", tag)
    if status != "OK":
        raise RuntimeError(f"seeding failed: {data!r}")


def _quote_ascii(name: str) -> bytes:
    return b'"' + name.encode("ascii").replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def sha256_of_der(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


# ----- a TCP relay that counts and breaks -----


class WireTap:
    """A threaded TCP relay ``127.0.0.1:port`` -> ``upstream``; counts client commands (the
    verbs of tagged lines, literals skipped) and bytes each way; cuts or stalls on demand."""

    def __init__(self, upstream_host: str, upstream_port: int, listen: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = listen  # any 127.x address is loopback on Linux (a name the cert lacks)
        self._listener = socket.create_server((listen, 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()  # cleared while stalled
        self._closed = False
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self.commands: list[str] = []
        self.bytes_up = 0
        self.bytes_down = 0
        self.connections = 0
        self.cuts = 0
        self._cut_commands: int | None = None
        self._cut_bytes: int | None = None
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    # ----- test controls -----

    def reset_counts(self) -> None:
        with self._lock:
            self.commands.clear()
            self.bytes_up = self.bytes_down = 0

    def count(self, verb: str) -> int:
        """Commands whose verb (``APPEND``, ``UID FETCH``, ...) is ``verb`` (upper case)."""
        with self._lock:
            return sum(1 for command in self.commands if command == verb)

    def cut_after(self, commands: int | None = None, bytes_down: int | None = None) -> None:
        """Drop the connection (once) when the client sends a command after ``commands`` more
        commands, or after ``bytes_down`` more bytes from the server; later connections pass."""
        with self._lock:
            self._cut_commands = commands
            self._cut_bytes = bytes_down

    def stall(self) -> None:
        """Stop forwarding both ways (connections stay open) until ``resume()``."""
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closed = True
        self._open.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            pairs = list(self._pairs)
        for client, server in pairs:
            _close(client)
            _close(server)
        self._thread.join(timeout=10)

    def __enter__(self) -> WireTap:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ----- relay -----

    def _accept(self) -> None:
        self._listener.settimeout(0.1)  # a close() from another thread does not wake accept()
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                server = socket.create_connection(self.upstream, timeout=30)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self._lock:
                self._pairs.append((client, server))
                self.connections += 1
            parser = _CommandParser()
            up = threading.Thread(target=self._pump_up, args=(client, server, parser), daemon=True)
            down = threading.Thread(target=self._pump_down, args=(server, client), daemon=True)
            up.start()
            down.start()

    def _pump_up(self, source: socket.socket, sink: socket.socket, parser: _CommandParser) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                self._open.wait()
                verbs = parser.feed(data)
                with self._lock:
                    cut = self._cut_commands is not None and self._cut_commands < len(verbs)
                    if cut:
                        self._cut_commands = None
                        self.cuts += 1
                    else:
                        if self._cut_commands is not None:
                            self._cut_commands -= len(verbs)
                        self.commands.extend(verbs)
                        self.bytes_up += len(data)
                if cut:
                    break
                sink.sendall(data)
        _close(source)
        _close(sink)

    def _pump_down(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                self._open.wait()
                with self._lock:
                    limit = self._cut_bytes
                    if limit is not None and len(data) >= limit:
                        data, self._cut_bytes = data[:limit], None
                        self.cuts += 1
                    elif limit is not None:
                        self._cut_bytes = limit - len(data)
                    self.bytes_down += len(data)
                sink.sendall(data)
                if limit is not None and self._cut_bytes is None:
                    break
        _close(source)
        _close(sink)


class _CommandParser:
    """Finds where client commands start in the byte stream, skipping literal contents."""

    _LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")

    def __init__(self) -> None:
        self._buffer = b""
        self._skip = 0
        self._continuing = False  # inside a command that sent a literal

    def feed(self, data: bytes) -> list[str]:
        verbs: list[str] = []
        self._buffer += data
        while True:
            if self._skip:
                taken = min(self._skip, len(self._buffer))
                self._buffer, self._skip = self._buffer[taken:], self._skip - taken
                if self._skip:
                    return verbs
            end = self._buffer.find(b"\r\n")
            if end < 0:
                return verbs
            line, self._buffer = self._buffer[: end + 2], self._buffer[end + 2 :]
            if not self._continuing:
                verb = _verb(line)
                if verb:
                    verbs.append(verb)
            literal = self._LITERAL.search(line)
            self._continuing = literal is not None
            self._skip = int(literal.group(1)) if literal else 0


def _verb(line: bytes) -> str | None:
    words = line.split(None, 3)
    if len(words) < 2 or words[0] in (b"+", b"*") or not re.fullmatch(rb"[A-Za-z0-9.]+", words[0]):
        return None  # an AUTHENTICATE continuation, DONE, ...
    verb = words[1].upper().decode("ascii", "replace")
    if verb == "UID" and len(words) > 2:
        return f"UID {words[2].upper().decode('ascii', 'replace')}"
    return verb


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@contextlib.contextmanager
def running(variant: str = "default", **kwargs: object) -> Iterator[DovecotServer]:
    server = DovecotServer(variant=variant, **kwargs)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()
