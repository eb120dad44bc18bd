"""A reproducible IMAP mailbox set for the IMAP benchmark, written straight into Dovecot's Maildir
before Dovecot first sees it (much faster than APPENDing 15,000 messages).

At scale 1: one mailbox ``big`` with 5,000 messages in its Inbox, and ten mailboxes
``user01``..``user10`` of 1,000 messages each spread over Inbox, Sent, Archive, Archive/2025 and a
folder with a non-ASCII name (stored in modified UTF-7, as Dovecot names it). Messages average
about 20 KB: realistic headers (Received chain, DKIM signature, sometimes an RFC 2047 subject),
plain text, multipart/alternative with an HTML part, and about one in five with a base64
attachment, a third of those from a pool shared between messages. Mailing-list messages are
delivered byte for byte to several of the ten mailboxes (duplicates across mailboxes). Flags: the
system flags in Maildir letters and the keyword ``$Forwarded`` (``dovecot-keywords``).

Every byte comes from ``random.Random`` seeded per mailbox, so a scale and a seed always give the
same set. File names carry ``S=`` (size) and ``W=`` (size with CRLF line ends) so Dovecot need not
read a message to answer RFC822.SIZE; the file's mtime is the message's INTERNALDATE.
"""

from __future__ import annotations

import base64
import email.utils
import random
from dataclasses import dataclass, field
from pathlib import Path

from orggen import FIRST, LAST, TextBank
from orggen import _write as write_file

DOMAIN = "example.test"
BIG_USER = "big"
BIG_MESSAGES = 5_000
SMALL_USERS = 10
SMALL_MESSAGES = 1_000
# Display path -> (Maildir++ directory below ~/Maildir, share of a small mailbox's messages).
SMALL_FOLDERS = {
    "INBOX": ("", 0.55),
    "Sent": (".Sent", 0.20),
    "Archive": (".Archive", 0.15),
    "Archive/2025": (".Archive.2025", 0.05),
    "Projets/Été": (".Projets.&AMk-t&AOk-", 0.05),
}
ATTACHMENT_RATE = 0.20
SHARED_ATTACHMENT_RATE = 0.35  # of the attachments
HTML_RATE = 0.30
LIST_RATE = 0.08  # of a small mailbox's Inbox: mailing-list messages shared between mailboxes
KEYWORD = "$Forwarded"  # Maildir keyword letter "a"
EPOCH_FROM, EPOCH_TO = 1_704_067_200, 1_780_000_000


@dataclass
class MailStats:
    messages: int = 0
    bytes: int = 0
    attachments: int = 0
    shared_attachments: int = 0
    list_copies: int = 0  # messages that are byte-for-byte copies of one in another mailbox
    by_user: dict[str, int] = field(default_factory=dict)  # messages
    bytes_by_user: dict[str, int] = field(default_factory=dict)
    folders: int = 0


def users() -> list[str]:
    return [BIG_USER] + [f"user{n:02d}" for n in range(1, SMALL_USERS + 1)]


def password(user: str) -> str:
    return f"{user}-secret"


class MailSet:
    """The generator; ``write(maildir_of)`` fills every user's Maildir and returns the stats."""

    def __init__(self, scale: float, seed: int) -> None:
        self.scale = scale
        self.seed = seed
        self.bank = TextBank(seed, sentences=40_000, rows=10)
        pool_rng = random.Random(f"{seed}:pool")
        self.pool = [
            base64.encodebytes(pool_rng.randbytes(int(pool_rng.lognormvariate(10.2, 0.6))))
            for _ in range(40)
        ]
        self.shared_attachments = 0  # messages generated with an attachment from the pool
        list_rng = random.Random(f"{seed}:lists")
        self.lists = [
            self.message(list_rng, "INBOX", f"announce@{DOMAIN}", "list")
            for _ in range(max(4, round(120 * scale)))
        ]

    # -- one message --

    def message(
        self, rng: random.Random, folder: str, me: str, kind: str = ""
    ) -> tuple[bytes, int]:
        """A message and its delivery time (its Date plus a few seconds of transport)."""
        peer = f"{rng.choice(FIRST)}.{rng.choice(LAST)}@{rng.choice((DOMAIN, 'partner.test'))}"
        sender, recipient = (me, peer) if folder == "Sent" else (peer, me)
        if kind == "list":
            sender, recipient = f"news@{DOMAIN}", f"all-staff@{DOMAIN}"
        date = rng.randint(EPOCH_FROM, EPOCH_TO)
        unique = f"{date}.{rng.randrange(16**12):012x}"
        subject = self.bank.phrase(rng, rng.randint(2, 9))
        if rng.random() < 0.1:  # an RFC 2047 encoded-word subject
            subject = f"=?UTF-8?B?{base64.b64encode(('Réunion ' + subject).encode()).decode()}?="
        hops = "".join(
            f"Received: from mx{h}.{DOMAIN} (mx{h}.{DOMAIN} [192.0.2.{rng.randint(1, 254)}])\n"
            f"\tby mail.{DOMAIN} with ESMTPS id {rng.randrange(16**10):010X}\n"
            f"\tfor <{recipient}>; {email.utils.formatdate(date - h)}\n"
            for h in range(rng.randint(1, 4))
        )
        dkim = base64.b64encode(rng.randbytes(128)).decode()
        headers = (
            f"Return-Path: <{sender}>\nDelivered-To: {recipient}\n{hops}"
            f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={DOMAIN}; s=sel1;\n"
            f"\tb={dkim[:76]}\n\t {dkim[76:]}\n"
            f"Message-ID: <{unique}@{DOMAIN}>\nDate: {email.utils.formatdate(date)}\n"
            f"From: {sender}\nTo: {recipient}\nSubject: {subject}\nMIME-Version: 1.0\n"
        )
        if kind == "list":
            headers += f"List-Id: <announce.{DOMAIN}>\nPrecedence: list\n"
        text = self.bank.text(rng, min(60_000, int(rng.lognormvariate(8.75, 0.7))))
        parts = [(b"text/plain; charset=utf-8", b"8bit", text)]
        if rng.random() < HTML_RATE:
            html = b"<html><body><p>" + text.replace(b"\n\n", b"</p>\n<p>") + b"</p></body></html>"
            parts.append((b"text/html; charset=utf-8", b"8bit", html))
        attachment = None
        if rng.random() < ATTACHMENT_RATE:
            if rng.random() < SHARED_ATTACHMENT_RATE:
                attachment = rng.choice(self.pool)
                self.shared_attachments += 1
            else:
                attachment = base64.encodebytes(rng.randbytes(int(rng.lognormvariate(10.0, 0.7))))
        return headers.encode() + _mime(unique, parts, attachment), date + rng.randint(1, 90)

    # -- the whole set --

    def plan(self, user: str) -> list[tuple[str, str]]:
        """(display folder, Maildir++ directory) of each of ``user``'s messages, in order."""
        if user == BIG_USER:
            return [("INBOX", "")] * max(1, round(BIG_MESSAGES * self.scale))
        count = max(len(SMALL_FOLDERS), round(SMALL_MESSAGES * self.scale))
        rng = random.Random(f"{self.seed}:{user}:plan")
        names = list(SMALL_FOLDERS)
        weights = [share for _, share in SMALL_FOLDERS.values()]
        chosen = names + rng.choices(names, weights, k=count - len(names))
        return [(name, SMALL_FOLDERS[name][0]) for name in chosen]

    def write(self, maildir_of: dict[str, Path]) -> MailStats:
        stats = MailStats()
        for user, root in maildir_of.items():
            rng = random.Random(f"{self.seed}:{user}:content")
            me = f"{user}@{DOMAIN}"
            folders = {directory for _, directory in self.plan(user)}
            for directory in sorted(folders | {"", ".Sent", ".Trash"}):
                _make_folder(root, directory)
            stats.folders += len(folders | {"", ".Sent", ".Trash"})
            count = size = 0
            for n, (folder, directory) in enumerate(self.plan(user)):
                shared = folder == "INBOX" and user != BIG_USER and rng.random() < LIST_RATE
                data, date = rng.choice(self.lists) if shared else self.message(rng, folder, me)
                stats.list_copies += shared
                unique = f"{date}.M{n}P{rng.randrange(10**6)}.bench"
                _deliver(root / directory, unique, data, _flags(rng, folder), date)
                count += 1
                size += len(data)
                stats.attachments += b"Content-Transfer-Encoding: base64" in data
            stats.by_user[user] = count
            stats.bytes_by_user[user] = size
            stats.messages += count
            stats.bytes += size
        stats.shared_attachments = self.shared_attachments
        return stats


def _mime(unique: str, parts: list[tuple[bytes, bytes, bytes]], attachment: bytes | None) -> bytes:
    if len(parts) == 1 and attachment is None:
        kind, encoding, body = parts[0]
        head = b"Content-Type: " + kind + b"\nContent-Transfer-Encoding: " + encoding
        return head + b"\n\n" + body
    boundary = f"=_alt_{unique}".encode()
    chunks = [b'Content-Type: multipart/alternative; boundary="' + boundary + b'"\n\n']
    for kind, encoding, body in parts:
        chunks += [b"--", boundary, b"\nContent-Type: ", kind, b"\nContent-Transfer-Encoding: "]
        chunks += [encoding, b"\n\n", body, b"\n"]
    chunks += [b"--", boundary, b"--\n"]
    body = b"".join(chunks)
    if attachment is None:
        return body
    outer = f"=_mix_{unique}".encode()
    name = f"document-{unique[-6:]}.pdf".encode()
    return b"".join(
        (
            b'Content-Type: multipart/mixed; boundary="',
            outer,
            b'"\n\n--',
            outer,
            b"\n",
            body,
            b"\n--",
            outer,
            b'\nContent-Type: application/pdf; name="',
            name,
            b'"\nContent-Disposition: attachment; filename="',
            name,
            b'"\nContent-Transfer-Encoding: base64\n\n',
            attachment,
            b"\n--",
            outer,
            b"--\n",
        )
    )


def _flags(rng: random.Random, folder: str) -> str:
    """Maildir info letters, in the ASCII order Maildir requires (keywords, lower case, last)."""
    if folder == "Sent":
        return "S"
    letters = rng.choices(("S", "", "FS", "RS", "Sa"), (70, 12, 7, 8, 3))[0]
    return "".join(sorted(letters, key=lambda c: (c.islower(), c)))


def _make_folder(root: Path, directory: str) -> None:
    folder = root / directory if directory else root
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    if directory:
        (folder / "maildirfolder").touch()
    (folder / "dovecot-keywords").write_text(f"0 {KEYWORD}\n")


def _deliver(folder: Path, unique: str, data: bytes, flags: str, date: int) -> None:
    virtual = len(data) + data.count(b"\n")  # the size with CRLF line ends, as IMAP counts it
    write_file(folder / "cur" / f"{unique},S={len(data)},W={virtual}:2,{flags}", data, date)
