"""What the IMAP benchmark itself does on the server, through the standard library's imaplib (so
it measures nobody's client): prime Dovecot's indexes, make the 1 % change, and read folders back
to check restores byte for byte, flag for flag and date for date."""

from __future__ import annotations

import imaplib
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from blake3 import blake3

LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?P<sep>"[^"]*"|NIL) (?P<name>.+)$')
FETCH_META = re.compile(rb"UID (\d+).*?FLAGS \(([^)]*)\).*?INTERNALDATE \"([^\"]+)\"", re.S)
BATCH = 500

# One message as a restore must reproduce it: its bytes, its flags (\Recent aside) and its date.
Fingerprint = tuple[str, tuple[str, ...], str]


@dataclass
class Changes:
    new: int = 0
    reflagged: int = 0
    expunged: int = 0

    @property
    def total(self) -> int:
        return self.new + self.reflagged + self.expunged

    def describe(self) -> str:
        return f"{self.new} new, {self.reflagged} re-flagged, {self.expunged} expunged"


def quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextmanager
def session(host: str, port: int, user: str, password: str) -> Iterator[imaplib.IMAP4]:
    client = imaplib.IMAP4(host, port)
    try:
        client.login(user, password)
        yield client
    finally:
        with suppress(imaplib.IMAP4.error, OSError):
            client.logout()


def folders(client: imaplib.IMAP4) -> list[str]:
    """Wire names of the selectable folders."""
    _, lines = client.list()
    names = []
    for line in lines:
        found = LIST_LINE.match(line) if isinstance(line, bytes) else None
        if found is None or b"\\Noselect" in found["flags"]:
            continue
        name = found["name"].decode()
        names.append(name[1:-1].replace('\\"', '"') if name.startswith('"') else name)
    return names


def uids(client: imaplib.IMAP4, folder: str, readonly: bool = True) -> list[int]:
    kind, data = client.select(quoted(folder), readonly=readonly)
    if kind != "OK":
        raise RuntimeError(f"cannot select {folder}: {data}")
    _, found = client.uid("SEARCH", "ALL")
    return [int(u) for u in found[0].split()]


def prime(client: imaplib.IMAP4) -> int:
    """Make Dovecot index every folder (UIDs, flags, sizes, dates) as a first client would, so
    the first timed tool does not pay for it. Returns the messages seen."""
    seen = 0
    for folder in folders(client):
        present = uids(client, folder)
        if present:
            client.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE INTERNALDATE)")
        seen += len(present)
    return seen


def fingerprints(
    client: imaplib.IMAP4, folder: str, strip: re.Pattern[bytes] | None = None
) -> Counter[Fingerprint]:
    """Every message of ``folder``: BLAKE3 of its bytes (less the first match of ``strip``), its
    flags and INTERNALDATE."""
    found: Counter[Fingerprint] = Counter()
    present = uids(client, folder)
    for start in range(0, len(present), BATCH):
        batch = ",".join(map(str, present[start : start + BATCH]))
        _, data = client.uid("FETCH", batch, "(FLAGS INTERNALDATE BODY.PEEK[])")
        for part in data:
            if not isinstance(part, tuple):
                continue
            meta = FETCH_META.search(part[0])
            if meta is None:
                raise RuntimeError(f"unexpected FETCH answer {part[0][:200]!r}")
            flags = tuple(sorted(f for f in meta[2].decode().split() if f != "\\Recent"))
            body = strip.sub(b"", part[1], count=1) if strip else part[1]
            found[(blake3(body).hexdigest(), flags, meta[3].decode())] += 1
    return found


def change(
    client: imaplib.IMAP4, rng: random.Random, fraction: float, new: Callable[[], tuple[bytes, int]]
) -> Changes:
    """About ``fraction`` of one mailbox's messages changed as its user would between two
    backups: new mail into the Inbox (``new()`` makes one and its arrival time), some
    messages re-flagged (answered and flagged), some expunged, spread over every folder."""
    everything = [(folder, uid) for folder in folders(client) for uid in uids(client, folder)]
    budget = max(3, round(len(everything) * fraction))
    arriving, flagged = round(budget * 0.4), round(budget * 0.3)
    picked = rng.sample(everything, min(len(everything), budget - arriving))
    done = Changes()
    for _ in range(arriving):
        data, date = new()
        client.append("INBOX", None, imaplib.Time2Internaldate(date), data)
        done.new += 1
    by_folder: dict[str, list[tuple[int, bool]]] = {}
    for n, (folder, uid) in enumerate(picked):
        by_folder.setdefault(folder, []).append((uid, n < flagged))
    for folder, chosen in by_folder.items():
        uids(client, folder, readonly=False)
        reflag = ",".join(str(uid) for uid, is_flag in chosen if is_flag)
        gone = ",".join(str(uid) for uid, is_flag in chosen if not is_flag)
        if reflag:
            client.uid("STORE", reflag, "+FLAGS", "(\\Answered \\Flagged)")
            done.reflagged += reflag.count(",") + 1
        if gone:
            client.uid("STORE", gone, "+FLAGS", "(\\Deleted)")
            client.expunge()
            done.expunged += gone.count(",") + 1
    return done
