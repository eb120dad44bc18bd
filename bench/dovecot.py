"""A private, rootless Dovecot 2.3 for the IMAP benchmark (the configuration of the research
notes, part A3): loopback, plain IMAP, passwd-file users, Maildir under ``<dir>/mail/<user>``.

The benchmark writes Maildir files itself before Dovecot first sees them, so it needs to know
where a user's mail lives (``maildir``) and to hand the files to the unprivileged user Dovecot
runs as (``give_away``). Run in the foreground (``-F``) as a child of the benchmark and stopped by
its PID, so nothing outlives the run.
"""

from __future__ import annotations

import grp
import os
import pwd
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

DOVECOT = Path("/usr/sbin/dovecot")
RUN_AS = "nobody"  # imap-login refuses to run as root

CONFIG = """\
protocols = imap
listen = 127.0.0.1, {plain_append_host}
instance_name = {instance}
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
# One login process per connection would fork per mailbox; the benchmark opens a few dozen.
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {dir}/users
}}
userdb {{
  driver = passwd-file
  args = {dir}/users
  default_fields = uid={user} gid={group} home={dir}/mail/%u
}}
# The same server seen without MULTIAPPEND: clients that connect to this second loopback address
# must send one APPEND per message.
local {plain_append_host} {{
  protocol imap {{
    imap_capability = {plain_caps}
  }}
}}
mail_location = maildir:~/Maildir
mail_fsync = {fsync}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Dovecot 2.3.19's post-login capabilities, MULTIAPPEND removed (and CATENATE, which extends it).
PLAIN_APPEND_CAPABILITIES = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES "
    "THREAD=REFS THREAD=ORDEREDSUBJECT URL-PARTIAL UNSELECT CHILDREN NAMESPACE UIDPLUS "
    "LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH "
    "LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ "
    "NOTIFY SPECIAL-USE"
)
PLAIN_APPEND_HOST = "127.0.0.2"


class Dovecot:
    """One instance on 127.0.0.1:``port``; ``users`` maps a login to its password. The same
    server answers on ``PLAIN_APPEND_HOST`` (same port) without MULTIAPPEND."""

    def __init__(self, directory: Path, users: Mapping[str, str], *, fsync: str = "never") -> None:
        self.dir = directory
        self.port = free_port()
        self.users = dict(users)
        self.fsync = fsync
        self.process: subprocess.Popen[bytes] | None = None
        self.account = pwd.getpwnam(RUN_AS) if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())

    def maildir(self, user: str) -> Path:
        return self.dir / "mail" / user / "Maildir"

    def write_config(self) -> Path:
        group = grp.getgrgid(self.account.pw_gid).gr_name
        for sub in ("run", "state", "mail"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        users = "".join(f"{login}:{{PLAIN}}{pw}::::::\n" for login, pw in self.users.items())
        (self.dir / "users").write_text(users)
        conf = self.dir / "dovecot.conf"
        conf.write_text(
            CONFIG.format(
                instance=f"ks-bench-{self.port}",
                dir=self.dir,
                user=self.account.pw_name,
                group=group,
                port=self.port,
                fsync=self.fsync,
                plain_append_host=PLAIN_APPEND_HOST,
                plain_caps=PLAIN_APPEND_CAPABILITIES,
            )
        )
        return conf

    def give_away(self) -> None:
        """Everything under the directory to the user Dovecot runs as (when started as root)."""
        if os.geteuid() != 0:
            return
        uid, gid = self.account.pw_uid, self.account.pw_gid
        os.chown(self.dir, uid, gid)
        for root, dirs, files in os.walk(self.dir):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), uid, gid)

    def start(self) -> None:
        conf = self.write_config()
        self.give_away()
        command = [str(DOVECOT), "-F", "-c", str(conf)]
        if os.geteuid() == 0:
            gid = self.account.pw_gid
            command = [
                "setpriv",
                f"--reuid={self.account.pw_uid}",
                f"--regid={gid}",
                "--clear-groups",
                *command,
            ]
        log = (self.dir / "master.out").open("wb")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"dovecot exited:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit(f"dovecot did not start:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def log_tail(self, lines: int = 20) -> str:
        texts = []
        for name in ("dovecot.log", "master.out"):
            path = self.dir / name
            if path.exists():
                texts += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(texts)
