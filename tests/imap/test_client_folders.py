"""Folders: SPECIAL-USE roles, modified UTF-7 names both ways, either separator, odd names."""

from __future__ import annotations

import pytest

from keepstone.domain.errors import InvalidInput
from keepstone.sources.imap import FolderMissing, ProtocolError, Security, connect, mutf7
from keepstone.sources.imap.folders import _folder, display_path
from keepstone.sources.imap.model import Folder
from keepstone.sources.imap.parse import Response, values
from keepstone.sources.imap.wire import Literal, quoted
from tests.imap.conftest import ImapUser


def test_special_use_roles_and_status(imap_user: ImapUser) -> None:
    with connect(imap_user.endpoint(), imap_user.credentials) as session:
        folders = {folder.wire_name: folder for folder in session.folders()}
    roles = {name: folder.role for name, folder in folders.items()}
    assert roles == {
        "INBOX": None,
        "Sent": "\\Sent",
        "Drafts": "\\Drafts",
        "Trash": "\\Trash",
        "Junk": "\\Junk",
        "Archive": "\\Archive",
    }
    inbox = folders["INBOX"]
    assert inbox.path == ("Inbox",)
    assert inbox.separator == "/"
    assert inbox.selectable
    # LIST-STATUS filled the statuses in the same round trip, with HIGHESTMODSEQ (CONDSTORE)
    assert inbox.status is not None
    assert inbox.status.messages == 0
    assert inbox.status.highestmodseq is not None


NAMES = [
    ("Données", "Été 2024"),
    ("日本語",),
    ("a&b", 'x"y\\z'),
    ("Emoji 📦",),
    ("Inbox", "Child"),
]


@pytest.mark.parametrize("which", ["default", "dot"])
def test_ensure_folder_round_trips_display_names(
    which: str, imap_user: ImapUser, dot_user: ImapUser
) -> None:
    user = imap_user if which == "default" else dot_user
    separator = "/" if which == "default" else "."
    with connect(user.endpoint(), user.credentials) as session:
        assert session.separator() == separator
        made = [session.ensure_folder(path) for path in NAMES]
        again = session.ensure_folder(NAMES[0])  # already there: the same folder, no error
        listed = {folder.wire_name: folder for folder in session.folders()}
    assert again.wire_name == made[0].wire_name
    for path, folder in zip(NAMES, made, strict=True):
        assert folder.wire_name in listed
        assert listed[folder.wire_name].path == path
        assert listed[folder.wire_name].separator == separator
    assert made[0].wire_name == separator.join(["Donn&AOk-es", "&AMk-t&AOk- 2024"])
    # the parent was created too
    assert listed["Donn&AOk-es"].path == ("Données",)
    assert made[4].wire_name == f"INBOX{separator}Child"


def test_separator_inside_a_name_is_refused(imap_user: ImapUser, dot_user: ImapUser) -> None:
    with connect(imap_user.endpoint(), imap_user.credentials) as session:
        with pytest.raises(InvalidInput, match="separator"):
            session.ensure_folder(["a/b"])
        assert session.ensure_folder(["a.b"]).path == ("a.b",)  # fine where "/" separates
        with pytest.raises(InvalidInput):
            session.ensure_folder([])
        with pytest.raises(InvalidInput):
            session.ensure_folder(["ok", ""])
    with connect(dot_user.endpoint(), dot_user.credentials) as session:
        with pytest.raises(InvalidInput, match="separator"):
            session.ensure_folder(["a.b"])
        # Dovecot's Maildir++ cannot hold "/" in a name: its refusal arrives as an error, the
        # name is not split into a hierarchy
        with pytest.raises(ProtocolError, match="CREATE"):
            session.ensure_folder(["a/b"])
        assert not any(f.path[0] == "a" for f in session.folders())


def test_malformed_and_raw_names_show_as_written() -> None:
    """Names a server sends that are not valid modified UTF-7 (Dovecot never does, other
    servers do) are shown as written, and the wire name is kept byte for byte."""
    cases = [
        (b'* LIST (\\HasNoChildren) "/" "Bad&Jjo-Name&"', (), "Bad&Jjo-Name&", ("Bad&Jjo-Name&",)),
        (b'* LIST () "/" {6}', (b"caf\xc3\xa9/x",), "caf\u00e9/x", ("caf\u00e9", "x")),
        (b"* LIST () NIL {4}", (b"r\xe9w/",), "r\udce9w/", ("r\ufffdw/",)),
        (b'* LIST (\\Noselect \\sent) "." INBOX.Sent', (), "INBOX.Sent", ("Inbox", "Sent")),
    ]
    for head, literals, wire_name, path in cases:
        texts = (head[: head.index(b"{")], b"") if literals else (head,)
        folder = _folder(values(Response(texts, literals), len(b"* LIST ")))
        assert folder.wire_name == wire_name
        assert folder.path == path
        assert quoted(folder.wire_name) in (
            Literal(wire_name.encode("utf-8", "surrogateescape")),
            b'"' + wire_name.encode("utf-8", "surrogateescape") + b'"',
        )
    assert not folder.selectable
    assert folder.role == "\\Sent"


def test_mutf7_codec() -> None:
    assert mutf7.encode("Données/Été 2024") == "Donn&AOk-es/&AMk-t&AOk- 2024"
    assert mutf7.encode("a&b") == "a&-b"
    assert mutf7.decode("&Jjo-!") == "☺!"
    assert mutf7.decode(mutf7.encode("📦 & é")) == "📦 & é"
    for bad in ("&", "&Jjo", "&A-", "&AGE-", "é", "&Jjo=-"):
        with pytest.raises(ValueError):
            mutf7.decode(bad)


def test_display_path_of_inbox_children_and_no_separator() -> None:
    assert display_path("INBOX", "/") == ("Inbox",)
    assert display_path("inbox.Sub", ".") == ("Inbox", "Sub")
    assert display_path("a/b", None) == ("a/b",)
    assert display_path("caf\udce9", "/") == ("caf\ufffd",)  # raw 8-bit bytes from the server


def test_select_missing_folder(imap_user: ImapUser) -> None:
    gone = Folder("Nope", ("Nope",), "/", None, True)
    with connect(imap_user.endpoint(Security.NONE), imap_user.credentials) as session:
        with pytest.raises(FolderMissing):
            session.select(gone)
        with pytest.raises(FolderMissing):
            session.status(gone)
