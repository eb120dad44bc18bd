"""Build real Local organizations on disk: Maildir++ mailboxes and OneDrive trees."""

from __future__ import annotations

import hashlib
import os
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path


def message(
    subject: str = "Hello",
    sender: str = "Alice <alice@example.test>",
    to: str = "Bob <bob@example.test>",
    date: str = "Wed, 10 Jun 2026 10:00:00 +0000",
    body: str = "Hi Bob,\nsee you soon.\n",
) -> bytes:
    """A real RFC 2822 message (CRLF line ends, non-ASCII headers RFC 2047-encoded)."""
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = date
    digest = hashlib.sha256(f"{subject}\0{body}".encode()).hexdigest()[:16]
    msg["Message-ID"] = f"<{digest}@example.test>"
    msg.set_content(body)
    return msg.as_bytes()


def maildir_folder(mail: Path, dir_name: str = "") -> Path:
    """Create ``Mail`` (``dir_name`` "") or ``Mail/<dir_name>`` with cur, new and tmp."""
    folder = mail / dir_name if dir_name else mail
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return folder


def deliver(mail: Path, dir_name: str, unique: str, data: bytes, flags: str | None = None) -> Path:
    """Put a message in ``cur/`` with ``:2,<flags>``, or in ``new/`` if ``flags`` is None."""
    folder = maildir_folder(mail, dir_name)
    path = folder / "new" / unique if flags is None else folder / "cur" / f"{unique}:2,{flags}"
    path.write_bytes(data)
    return path


def write_file(drive: Path, rel: str, data: bytes, mtime: float | None = None) -> Path:
    path = drive / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def standard_org(root: Path) -> Path:
    """alice (mail + drive), bob (mail only), carol (drive only), dave (neither), plus junk."""
    alice_mail = root / "alice" / "Mail"
    deliver(alice_mail, "", "1000.M1P1.host", message("Inbox read"), "S")
    deliver(alice_mail, "", "1001.M1P1.host", message("Inbox new"))  # new/: no flags
    deliver(alice_mail, "", "1002.M1P1.host", message("Answered", body="x\n"), "SR")
    deliver(alice_mail, ".Sent", "2000.M1P1.host", message("Sent one"), "S")
    deliver(alice_mail, ".Archive", "3000.M1P1.host", message("Archived"), "")
    deliver(alice_mail, ".Archive.2024", "3100.M1P1.host", message("Old"), "FS")
    deliver(alice_mail, ".Entw&APw-rfe", "4000.M1P1.host", message("Entwurf über"), "D")
    deliver(alice_mail, ".Re&AOc-us.Donn&AOk-es", "4100.M1P1.host", message("Reçu"), "S")
    # Never read: tmp/ (a half-delivered message), dot files, Dovecot's index files.
    (alice_mail / "tmp" / "9999.M1P1.host").write_bytes(b"Subject: half\r\n")
    (alice_mail / "cur" / ".hidden").write_bytes(b"junk")
    (alice_mail / "dovecot.index").write_bytes(b"index")
    (alice_mail / "subscriptions").write_text("Sent\nArchive\n")
    (alice_mail / ".notmuch" / "xapian").mkdir(parents=True)

    alice_drive = root / "alice" / "OneDrive"
    write_file(alice_drive, "report.txt", b"quarterly report\n", mtime=1_700_000_000.5)
    write_file(alice_drive, "Documents/empty.txt", b"")
    write_file(alice_drive, "Documents/Projekte 2024/Übersicht (final).md", b"# \xc3\x9cbersicht\n")
    write_file(alice_drive, "Photos/été/plage #1.jpg", b"\xff\xd8\xff" + b"\0" * 100)
    write_file(alice_drive, ".config/settings.ini", b"[a]\nb=1\n")
    (alice_drive / "Empty folder").mkdir()
    (alice_drive / "link-to-report.txt").symlink_to("report.txt")
    (alice_drive / "link-outside").symlink_to(root.parent, target_is_directory=True)
    os.mkfifo(alice_drive / "a-fifo")

    deliver(root / "bob" / "Mail", "", "5000.M1P1.host", message("For Bob"), "S")
    write_file(root / "carol" / "OneDrive", "notes.txt", b"carol's notes")
    (root / "dave").mkdir()
    (root / ".snapshots").mkdir()
    (root / "README.txt").write_text("not a user")
    return root
