"""Query parameters as the vendor's ASP.NET servers bind them (api/query_names.py): a name in any
case is the declared parameter, and an empty value of one that may be null is not sent."""

from __future__ import annotations

import string
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

import pytest
from fastapi import APIRouter, Depends, FastAPI, Query
from hypothesis import given
from hypothesis import strategies as st

from keepstone.api.deferred import install_all
from keepstone.api.query_names import Declared, Names, canonical_query, declared_names, may_be_null
from keepstone.proxy.worker import ProxyWorker
from tests.backup.test_backup_restore import explore
from tests.conftest import Api
from tests.local_org import backup_proxy, org_job, organization, run_job

__all__ = ["backup_proxy", "org_job", "organization"]  # fixtures


@pytest.fixture
def browse(api: Api, org_job: dict[str, Any], backup_proxy: ProxyWorker) -> str:
    """A restore session's organization, over a backup of the local organization."""
    assert run_job(api, org_job, backup_proxy)["status"] == "Success"
    return f"/v6/RestoreSessions/{explore(api, org_job)}/Organization"


def _results(api: Api, path: str) -> list[Any]:
    response = api.get(path)
    assert response.status_code == 200, response.text
    found: list[Any] = response.json()["results"]
    return found


def _owner(api: Api, browse: str, collection: str, name: str) -> str:
    owner_id: str = next(o for o in _results(api, f"{browse}/{collection}") if o["name"] == name)[
        "id"
    ]
    return f"{browse}/{collection}/{owner_id}"


def test_a_folder_listing_takes_parent_id_in_any_case(api: Api, browse: str) -> None:
    drive = _owner(api, browse, "OneDrives", "alice")
    everything = _results(api, f"{drive}/Folders")
    documents = next(f for f in everything if f["name"] == "Documents")
    children = _results(api, f"{drive}/Folders?parentId={documents['id']}")
    assert [f["name"] for f in children] == ["Photos"]  # not the whole tree
    for spelling in ("parentID", "PARENTID", "parentid", "ParentId"):
        assert _results(api, f"{drive}/Folders?{spelling}={documents['id']}") == children
    # empty: not sent (ASP.NET binds it as null); "null": the vendor's top of the tree
    assert _results(api, f"{drive}/Folders?parentID=") == everything
    assert _results(api, f"{drive}/Folders?parentID=null") == [documents]


def test_an_empty_folder_id_lists_as_without_one(api: Api, browse: str) -> None:
    mailbox = _owner(api, browse, "Mailboxes", "alice")
    every_item = _results(api, f"{mailbox}/Items")
    assert len(every_item) == 4
    assert _results(api, f"{mailbox}/Items?folderId=") == every_item
    assert _results(api, f"{mailbox}/Items?FOLDERID") == every_item
    drive = _owner(api, browse, "OneDrives", "alice")
    assert _results(api, f"{drive}/Documents?folderId=") == _results(api, f"{drive}/Documents")


def test_paging_names_match_in_any_case(api: Api, browse: str) -> None:
    mailbox = _owner(api, browse, "Mailboxes", "alice")
    page = api.get(f"{mailbox}/Items?LIMIT=5").json()
    assert page["limit"] == 5 and page["_links"]["self"]["href"].count("limit=5") == 1
    assert page["results"] == api.get(f"{mailbox}/Items?limit=5").json()["results"]
    second = api.get(f"{mailbox}/Items?Offset=1&LIMIT=2&SETID={page['setId']}").json()
    same = api.get(f"{mailbox}/Items?offset=1&limit=2&setId={page['setId']}").json()
    assert second["results"] == same["results"] and len(second["results"]) == 2
    # limit may be null (int?): empty is the default; offset may not (int): a 400, as ASP.NET
    assert api.get(f"{mailbox}/Items?limit=").json()["limit"] == 30
    refused = api.get(f"{mailbox}/Items?OFFSET=")
    assert refused.status_code == 400 and "offset" in refused.json()["message"]


def test_the_app_s_declared_names_never_clash() -> None:
    """Every route of both dialects (the Enterprise Manager's put in too): no two names differ
    only in case, nor in whether an empty value is "not sent"."""
    from keepstone.api.app import create_app

    app = create_app(_FakeContext())  # type: ignore[arg-type]
    install_all(app)
    names = declared_names(app.router.routes)
    assert names["vb365"].folded["parentid"] == Declared("parentId", True)
    assert names["vb365"].folded["offset"] == Declared("offset", False)
    assert names["em"].folded["pagesize"] == Declared("pageSize", False)
    assert "why" not in names["vb365"].folded  # the console's parameters are its own


class _FakeContext:
    """What create_app reads of a context (its routes are only analysed here)."""

    def __init__(self) -> None:
        from keepstone.clock import SystemClock

        self.clock = SystemClock()


def _app(*routes: tuple[str, Any], dependency: Any = None) -> FastAPI:
    router = APIRouter()
    for path, handler in routes:
        router.get(path)(handler)
    app = FastAPI()
    app.include_router(router, dependencies=[Depends(dependency)] if dependency else [])
    return app


def test_names_differing_only_in_case_fail_at_the_start() -> None:
    def one(parentId: str | None = None) -> None: ...
    def other(parentID: str | None = None) -> None: ...

    with pytest.raises(ValueError, match="parentI"):
        declared_names(_app(("/v2/a", one), ("/v3/b", other)).router.routes)
    # in different dialects, or outside them, they are not compared
    declared_names(_app(("/v2/a", one), ("/api/b", other), ("/page", other)).router.routes)


def test_a_name_nullable_in_one_route_and_not_in_another_fails_at_the_start() -> None:
    def one(limit: int | None = None) -> None: ...
    def other(limit: int = 0) -> None: ...

    with pytest.raises(ValueError, match="limit"):
        declared_names(_app(("/v2/a", one), ("/v2/b", other)).router.routes)


def _paging(Offset: Annotated[int, Query(ge=0)] = 0) -> int:
    return Offset


def _listing(
    page: Annotated[int, Depends(_paging)], q: Annotated[list[str] | None, Query()] = None
) -> None: ...
def _include_wide(token: str = "") -> None: ...


def test_the_names_of_dependencies_are_declared_too() -> None:
    names = declared_names(_app(("/v2/a", _listing), dependency=_include_wide).router.routes)
    assert names["vb365"].folded == {
        "offset": Declared("Offset", False),
        "q": Declared("q", True),
        "token": Declared("token", True),
    }


@pytest.mark.parametrize(
    ("annotation", "nullable"),
    [
        (str, True),
        (str | None, True),
        (int | None, True),
        (list[str] | None, True),
        (list[str], True),
        (int, False),
        (bool, False),
        (float, False),
    ],
)
def test_what_may_be_null_as_dotnet_types_go(annotation: Any, nullable: bool) -> None:
    assert may_be_null(annotation) is nullable


# ---- the rewriting itself ----------------------------------------------------------------------

_DECLARED = Names(
    {
        "parentid": Declared("parentId", True),
        "limit": Declared("limit", True),
        "offset": Declared("offset", False),
        "setid": Declared("setId", True),
    }
)
_NAMES = ["parentId", "limit", "offset", "setId", "folder", "x", "K", "\u212a"]  # Kelvin sign


@st.composite
def _names(draw: st.DrawFn) -> str:
    """A name as a client may write it: any case, some characters percent-encoded."""
    name = draw(st.sampled_from(_NAMES) | st.text(string.ascii_letters + "_.-~", max_size=8))
    cased = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in name)
    return "".join(quote(c, safe="") if draw(st.booleans()) else quote(c) for c in cased)


_values = st.sampled_from(["", "5", "null", "a%20b", "a+b", "%3D", "x=y"])


@st.composite
def _queries(draw: st.DrawFn) -> bytes:
    pairs = draw(st.lists(st.tuples(_names(), _values, st.booleans()), max_size=6))
    text = "&".join(f"{n}={v}" if v or with_equals else n for n, v, with_equals in pairs)
    return text.encode("ascii")


def _expected(query: bytes) -> list[tuple[str, str]]:
    """What the app should read: each declared name (folded as ASCII, as .NET's ordinal
    comparison ignoring case folds it) as declared, its empty value gone if it may be null."""
    found = []
    for name, value in parse_qsl(query.decode(), keep_blank_values=True):
        declared = _DECLARED.folded.get(name.lower()) if name.isascii() else None
        if declared is None:
            found.append((name, value))
        elif value or not declared.empty_is_absent:
            found.append((declared.name, value))
    return found


@given(_queries())
def test_a_query_is_read_with_declared_names_and_without_empty_values(query: bytes) -> None:
    rewritten = canonical_query(query, _DECLARED)
    assert parse_qsl(rewritten.decode(), keep_blank_values=True) == _expected(query)
    assert canonical_query(rewritten, _DECLARED) == rewritten  # nothing left to change


@given(st.lists(st.tuples(st.sampled_from(["parentId", "limit", "offset", "Other"]), _values)))
def test_a_query_already_as_declared_is_passed_on_as_it_came(
    pairs: list[tuple[str, str]],
) -> None:
    query = "&".join(f"{n}={v}" for n, v in pairs if v or n in ("offset", "Other")).encode()
    assert canonical_query(query, _DECLARED) is query
