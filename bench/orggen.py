"""A reproducible Local organization for the backup benchmark, and a reproducible 1 % change.

Layout (what ``keepstone.sources.local`` reads)::

    <root>/<user>/Mail/{cur,new,tmp}                  Inbox
    <root>/<user>/Mail/.Sent/..., .Archive/...         Maildir++ folders
    <root>/<user>/OneDrive/<folders>/<files>

Messages are RFC 2822 (LF line endings, as Maildir stores them) with text bodies drawn from a
Zipf-distributed vocabulary, some quoting an earlier message, and one in ten carrying a base64
attachment. Half of the attachments come from a shared pool, so the same bytes (same base64 and
line breaks) appear in several users' messages. OneDrive files are half random bytes (photos,
archives, PDFs: incompressible) and half text or CSV (compressible). Every byte comes from
``random.Random`` seeded per user, so a scale and a seed always give the same organization.

Speed: text is assembled from a bank of pre-built sentences and CSV rows (so no per-word Python
work per file), shared attachments are encoded once, and files are written in one call each.
"""

from __future__ import annotations

import base64
import email.utils
import itertools
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

USERS = 20
MESSAGES_PER_USER = 1500
FILES_PER_USER = 240
ATTACHMENT_RATE = 0.10  # messages with an attachment; half of them from the shared pool
SHARED_POOL = 60  # distinct shared attachments at scale 1
REPLY_RATE = 0.30  # messages that quote an earlier one
FOLDERS = (("", 0.55), (".Sent", 0.20), (".Archive", 0.25))  # Maildir++ dir name, share
FIRST = (
    "adele",
    "bruno",
    "chiara",
    "dmitri",
    "elena",
    "farid",
    "greta",
    "hugo",
    "ines",
    "jonas",
    "keiko",
    "lars",
    "maria",
    "nadia",
    "omar",
    "paula",
    "quentin",
    "rosa",
    "sven",
    "tomas",
)
LAST = (
    "martin",
    "weber",
    "rossi",
    "ivanov",
    "garcia",
    "haddad",
    "larsen",
    "dubois",
    "costa",
    "berg",
    "tanaka",
    "nilsen",
    "lopez",
    "novak",
    "aziz",
    "silva",
    "moreau",
    "ferrari",
    "lund",
    "horak",
)
DOMAIN = "example.test"
EPOCH_FROM, EPOCH_TO = 1_704_067_200, 1_780_000_000  # 2024-01-01 .. mid 2026
TEXT_EXTENSIONS = (".txt", ".md", ".csv", ".log")
BINARY_EXTENSIONS = (".jpg", ".pdf", ".zip", ".mp4", ".pptx")
DRIVE_FOLDERS = (
    "Documents",
    "Documents/Reports",
    "Documents/Projects/apollo",
    "Documents/Projects/borealis",
    "Pictures/2024",
    "Pictures/2025",
    "Finance/2025",
    "Shared",
    "Desktop",
)
LETTERS = "etaoinshrdlcumwfgypbvkjxqz"


# ----- text ----------------------------------------------------------------------------------


class TextBank:
    """Sentences and CSV rows built once; files are random sequences of them."""

    def __init__(self, seed: int, sentences: int = 120_000, rows: int = 60_000) -> None:
        rng = random.Random(f"{seed}:bank")
        weights = range(len(LETTERS), 0, -1)
        vocab = [
            "".join(rng.choices(LETTERS, weights, k=max(1, int(rng.lognormvariate(1.6, 0.5)))))
            for _ in range(15_000)
        ]
        cum = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(vocab))))
        words = iter(rng.choices(vocab, cum_weights=cum, k=sentences * 14))
        bank = []
        for _ in range(sentences):
            sentence = " ".join(itertools.islice(words, rng.randint(5, 22)))
            end = "\n\n" if rng.random() < 0.22 else (",\n" if rng.random() < 0.1 else ". ")
            bank.append((sentence[:1].upper() + sentence[1:] + end).encode())
        self.sentences = bank
        self.sentence_mean = sum(map(len, bank)) / len(bank)
        self.words = vocab[:3000]
        categories = vocab[:40]
        self.rows = [
            (
                f"{rng.randint(2019, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},"
                f"{rng.randrange(10**6, 10**7)},"
                f"{rng.choice(FIRST).title()} {rng.choice(LAST).title()},"
                f"{rng.choice(categories)},{rng.lognormvariate(4, 1.2):.2f},{rng.randint(1, 500)},"
                f"{rng.choice(('open', 'paid', 'overdue', 'void'))}\n"
            ).encode()
            for _ in range(rows)
        ]
        self.row_mean = sum(map(len, self.rows)) / len(self.rows)

    def text(self, rng: random.Random, size: int) -> bytes:
        """About ``size`` bytes of prose (never empty)."""
        count = max(1, round(size / self.sentence_mean))
        return b"".join(rng.choices(self.sentences, k=count))

    def csv(self, rng: random.Random, size: int) -> bytes:
        header = b"date,id,customer,category,amount,quantity,status\n"
        return header + b"".join(rng.choices(self.rows, k=max(1, round(size / self.row_mean))))

    def phrase(self, rng: random.Random, words: int) -> str:
        return " ".join(rng.choices(self.words, k=words)).capitalize()


# ----- the plan: sizes first, so the disk check knows the total before anything is written ----


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    size: int  # raw bytes
    shared: int | None  # index into the shared pool, or None for a unique attachment


@dataclass(frozen=True, slots=True)
class MessagePlan:
    folder: str
    unique: str
    flags: str
    date: int
    body: int
    quoted: int
    attachment: Attachment | None

    def estimate(self) -> int:
        extra = _b64_size(self.attachment.size) + 400 if self.attachment else 0
        return 650 + self.body + self.quoted + extra


@dataclass(frozen=True, slots=True)
class FilePlan:
    path: str
    size: int
    compressible: bool
    mtime: int


@dataclass
class UserPlan:
    name: str
    messages: list[MessagePlan]
    files: list[FilePlan]


@dataclass
class OrgStats:
    users: list[str]
    messages: int = 0
    files: int = 0
    mail_bytes: int = 0
    file_bytes: int = 0
    attachments: int = 0
    shared_attachments: int = 0
    bytes_by_user_mail: dict[str, int] = field(default_factory=dict)

    @property
    def items(self) -> int:
        return self.messages + self.files

    @property
    def total_bytes(self) -> int:
        return self.mail_bytes + self.file_bytes


@dataclass
class Changes:
    new_messages: int = 0
    reflagged_messages: int = 0
    deleted_messages: int = 0
    edited_files: int = 0
    new_files: int = 0
    deleted_files: int = 0
    bytes_written: int = 0

    @property
    def items(self) -> int:
        return (
            self.new_messages
            + self.reflagged_messages
            + self.deleted_messages
            + self.edited_files
            + self.new_files
            + self.deleted_files
        )

    def describe(self) -> str:
        return (
            f"{self.new_messages} new messages, {self.reflagged_messages} re-flagged, "
            f"{self.deleted_messages} deleted; {self.edited_files} files edited, "
            f"{self.new_files} new, {self.deleted_files} deleted"
        )


def _b64_size(raw: int) -> int:
    encoded = 4 * ((raw + 2) // 3)
    return encoded + encoded // 76 + 1


def _user_names() -> list[str]:
    return sorted(f"{first}.{last}" for first, last in zip(FIRST, LAST, strict=True))[:USERS]


class Organization:
    """The generator: ``plan`` (cheap, sizes only), ``write`` and ``mutate``."""

    def __init__(self, root: Path, scale: float, seed: int) -> None:
        self.root = root
        self.scale = scale
        self.seed = seed
        self.bank = TextBank(seed)
        pool_rng = random.Random(f"{seed}:pool")
        self.pool = [
            Attachment(
                f"{self.bank.phrase(pool_rng, 2).replace(' ', '-')}-{n}"
                f"{pool_rng.choice(('.pdf', '.pptx', '.docx', '.jpg'))}",
                min(6_000_000, int(pool_rng.lognormvariate(12.2, 1.0))),
                n,
            )
            for n in range(max(4, round(SHARED_POOL * min(1.0, scale * 4))))
        ]
        self._pool_cache: dict[int, bytes] = {}
        self.users = [self._plan_user(name, n) for n, name in enumerate(_user_names())]

    # -- planning --

    def _plan_user(self, name: str, number: int) -> UserPlan:
        rng = random.Random(f"{self.seed}:{name}:plan")
        messages = [
            self._plan_message(rng, number, n)
            for n in range(max(1, round(MESSAGES_PER_USER * self.scale)))
        ]
        files = []
        for n in range(max(1, round(FILES_PER_USER * self.scale))):
            compressible = rng.random() < 0.5
            ext = rng.choice(TEXT_EXTENSIONS if compressible else BINARY_EXTENSIONS)
            stem = self.bank.phrase(rng, rng.randint(1, 3)).replace(" ", "-")
            files.append(
                FilePlan(
                    f"{rng.choice(DRIVE_FOLDERS)}/{stem}-{n}{ext}",
                    min(40_000_000, int(rng.lognormvariate(11.0, 1.5))),
                    compressible,
                    rng.randint(EPOCH_FROM, EPOCH_TO),
                )
            )
        return UserPlan(name, messages, files)

    def _plan_message(self, rng: random.Random, user: int, n: int) -> MessagePlan:
        folder = rng.choices([f for f, _ in FOLDERS], [w for _, w in FOLDERS])[0]
        date = rng.randint(EPOCH_FROM, EPOCH_TO)
        unique = f"{date}.M{rng.randrange(10**6)}P{1000 + user}Q{n}.mail{user % 3}.{DOMAIN}"
        flags = rng.choice(("S", "S", "S", "RS", "FS", "")) if folder != ".Sent" else "S"
        body = min(60_000, int(rng.lognormvariate(7.8, 0.9)))
        quoted = min(30_000, int(rng.lognormvariate(7.3, 0.8))) if rng.random() < REPLY_RATE else 0
        attachment = None
        if rng.random() < ATTACHMENT_RATE:
            if rng.random() < 0.5:
                attachment = rng.choice(self.pool)
            else:
                ext = rng.choice((".pdf", ".jpg", ".docx", ".xlsx", ".zip"))
                attachment = Attachment(
                    f"{self.bank.phrase(rng, 2).replace(' ', '_')}{ext}",
                    min(8_000_000, int(rng.lognormvariate(11.5, 1.0))),
                    None,
                )
        return MessagePlan(folder, unique, flags, date, body, quoted, attachment)

    def planned_bytes(self) -> int:
        return sum(
            sum(m.estimate() for m in u.messages) + sum(f.size for f in u.files) for u in self.users
        )

    # -- writing --

    def write(self) -> OrgStats:
        stats = OrgStats([u.name for u in self.users])
        for user in self.users:
            rng = random.Random(f"{self.seed}:{user.name}:content")
            mail_dir = self.root / user.name / "Mail"
            for folder, _ in FOLDERS:
                _make_maildir(mail_dir / folder if folder else mail_dir, bool(folder))
            mail_bytes = 0
            for plan in user.messages:
                data = self._message(rng, user.name, plan)
                folder_dir = mail_dir / plan.folder if plan.folder else mail_dir
                _write(folder_dir / "cur" / f"{plan.unique}:2,{plan.flags}", data, plan.date)
                mail_bytes += len(data)
                if plan.attachment is not None:
                    stats.attachments += 1
                    stats.shared_attachments += plan.attachment.shared is not None
            stats.bytes_by_user_mail[user.name] = mail_bytes
            stats.mail_bytes += mail_bytes
            stats.messages += len(user.messages)
            drive = self.root / user.name / "OneDrive"
            for file in user.files:
                data = self._file_content(rng, file.path, file.size, file.compressible)
                target = drive / file.path
                target.parent.mkdir(parents=True, exist_ok=True)
                _write(target, data, file.mtime)
                stats.file_bytes += len(data)
            stats.files += len(user.files)
        return stats

    def _file_content(self, rng: random.Random, path: str, size: int, compressible: bool) -> bytes:
        if not compressible:
            return rng.randbytes(size)
        if path.endswith(".csv"):
            return self.bank.csv(rng, size)
        return self.bank.text(rng, size)

    def _message(self, rng: random.Random, user: str, plan: MessagePlan) -> bytes:
        me = f"{user}@{DOMAIN}"
        other = f"{rng.choice(FIRST)}.{rng.choice(LAST)}@{rng.choice((DOMAIN, 'partner.test'))}"
        sender, recipient = (me, other) if plan.folder == ".Sent" else (other, me)
        subject = self.bank.phrase(rng, rng.randint(2, 8))
        if plan.quoted:
            subject = "Re: " + subject
        headers = (
            f"Return-Path: <{sender}>\nDelivered-To: {recipient}\n"
            f"Message-ID: <{plan.unique}@{DOMAIN}>\nDate: {email.utils.formatdate(plan.date)}\n"
            f"From: {_display(sender)} <{sender}>\nTo: {_display(recipient)} <{recipient}>\n"
            f"Subject: {subject}\nMIME-Version: 1.0\n"
        ).encode()
        body = self.bank.text(rng, plan.body)
        if plan.quoted:
            quoted = self.bank.text(rng, plan.quoted).replace(b"\n", b"\n> ")
            body += (
                f"\n\nOn {email.utils.formatdate(plan.date - 86_400)}, {recipient} "
                "wrote:\n".encode()
                + b"> "
                + quoted
                + b"\n"
            )
        if plan.attachment is None:
            return (
                headers + b"Content-Type: text/plain; charset=utf-8\n"
                b"Content-Transfer-Encoding: 8bit\n\n" + body
            )
        boundary = f"=_{plan.unique[:24]}".encode()
        return b"".join(
            (
                headers,
                b'Content-Type: multipart/mixed; boundary="',
                boundary,
                b'"\n\n',
                b"--",
                boundary,
                b"\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n",
                body,
                b"\n--",
                boundary,
                f'\nContent-Type: application/octet-stream; name="{plan.attachment.name}"\n'
                f'Content-Disposition: attachment; filename="{plan.attachment.name}"\n'.encode(),
                b"Content-Transfer-Encoding: base64\n\n",
                self._attachment(rng, plan.attachment),
                b"\n--",
                boundary,
                b"--\n",
            )
        )

    def _attachment(self, rng: random.Random, attachment: Attachment) -> bytes:
        if attachment.shared is None:
            return base64.encodebytes(rng.randbytes(attachment.size))
        cached = self._pool_cache.get(attachment.shared)
        if cached is None:
            raw = random.Random(f"{self.seed}:shared:{attachment.shared}").randbytes(
                attachment.size
            )
            cached = self._pool_cache[attachment.shared] = base64.encodebytes(raw)
        return cached

    # -- the change between two backups --

    def mutate(self, fraction: float = 0.01) -> Changes:
        """Change about ``fraction`` of the items, as users do between two backups."""
        rng = random.Random(f"{self.seed}:mutate")
        messages = sorted(_message_files(self.root))
        files = sorted(p for u in self.users for p in _walk_files(self.root / u.name / "OneDrive"))
        budget = max(6, round((len(messages) + len(files)) * fraction))
        changes = Changes()
        for _ in range(round(budget * 0.40)):  # new mail, delivered to new/ (no flags yet)
            user = rng.choice(self.users)
            plan = self._plan_message(rng, 99, 10**6 + changes.new_messages)
            data = self._message(rng, user.name, plan)
            _write(self.root / user.name / "Mail" / "new" / plan.unique, data, None)
            changes.new_messages += 1
            changes.bytes_written += len(data)
        picked = rng.sample(messages, min(len(messages), round(budget * 0.20)))
        half = len(picked) // 2
        for path in picked[:half]:  # read and replied to: the Maildir name's flags change
            unique = path.name.split(":")[0]
            path.rename(path.with_name(f"{unique}:2,RS"))
            changes.reflagged_messages += 1
        for path in picked[half:]:
            path.unlink()
            changes.deleted_messages += 1
        picked_files = rng.sample(files, min(len(files), round(budget * 0.35)))
        deleted = max(1, round(budget * 0.10))
        for path in picked_files[deleted:]:
            changes.bytes_written += self._edit(rng, path)
            changes.edited_files += 1
        for path in picked_files[:deleted]:
            path.unlink()
            changes.deleted_files += 1
        for n in range(max(1, round(budget * 0.05))):
            user = rng.choice(self.users)
            size = min(20_000_000, int(rng.lognormvariate(11.0, 1.5)))
            compressible = rng.random() < 0.5
            ext = ".txt" if compressible else ".jpg"
            data = self._file_content(rng, ext, size, compressible)
            target = self.root / user.name / "OneDrive" / "Documents" / f"new-{n}{ext}"
            _write(target, data, None)
            changes.new_files += 1
            changes.bytes_written += len(data)
        return changes

    def _edit(self, rng: random.Random, path: Path) -> int:
        """Append to a text file; overwrite a region of a binary one (same size)."""
        if path.suffix in TEXT_EXTENSIONS:
            extra = self.bank.text(rng, rng.randint(2_000, 20_000))
            with path.open("ab") as out:
                out.write(extra)
            return len(extra)
        size = path.stat().st_size
        length = min(size, 64 * 1024)
        with path.open("r+b") as out:
            out.seek(rng.randrange(size - length + 1))
            out.write(rng.randbytes(length))
        return length


def _display(address: str) -> str:
    return address.split("@")[0].replace(".", " ").title()


def _make_maildir(folder_dir: Path, subfolder: bool) -> None:
    for sub in ("cur", "new", "tmp"):
        (folder_dir / sub).mkdir(parents=True, exist_ok=True)
    if subfolder:
        (folder_dir / "maildirfolder").touch()


def _write(path: Path, data: bytes, mtime: int | None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def _message_files(root: Path) -> Iterator[Path]:
    for user_dir in root.iterdir():
        mail = user_dir / "Mail"
        for folder in [mail, *(p for p in mail.iterdir() if p.name.startswith("."))]:
            for sub in ("cur", "new"):
                yield from (folder / sub).iterdir()


def _walk_files(directory: Path) -> Iterator[Path]:
    for dirpath, _, names in os.walk(directory):
        for name in names:
            yield Path(dirpath) / name
