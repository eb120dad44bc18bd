"""The collections Keepstone has no objects of (replicas, VM restore points, agents, NAS, Cloud
Connect, ...), and the service roots that list them: each answers, empty, in the vendor's shape.

Without ``format`` a list is ``EntityReferences``; with ``format=Entity`` it is the list's own
root element, as RestAPI.xsd names it (``ReplicaJobSessions``). Lists newer than the shipped
schema (agents, NAS, CDP, external repositories) use the vendor's plural (``NasJobs``), the
vendor's rule for list types (``XList`` -> plural root), outside the schema.
"""

import copy
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from fastapi.utils import generate_unique_id
from starlette.responses import Response
from starlette.routing import compile_path

from keepstone.api.em.deps import Who, answer
from keepstone.api.em.directory import SERVICES, Collection, empty_collections
from keepstone.api.em.hypermedia import Link, entity_href, links_of
from keepstone.api.em.schema_names import list_root
from keepstone.api.em.xml import element

router = APIRouter(prefix="/api")


def plural(item: str) -> str:
    """The vendor's list root for a type the schema does not declare."""
    if item.endswith("y"):
        return f"{item[:-1]}ies"
    return f"{item}es" if item.endswith("s") else f"{item}s"


def entity_list_root(item: str) -> str:
    return list_root(item) or plural(item)


# Each empty list's item type, by its route's path (the lists share one handler).
_ITEMS: dict[str, str] = {}


def empty_list(request: Request, who: Who, format: str = "References") -> Response:
    del who
    item = _ITEMS[request.scope["route"].path]
    # Named at the first request, not at import: reading RestAPI.xsd took 0.4 s of each
    # server start (list_root caches it).
    if format.lower() == "entity":
        return answer(request, element(entity_list_root(item)))
    return answer(request, element("EntityReferences"))


def _add_empty_lists(collections: list[Collection]) -> None:
    """One route per empty list, all with one handler, which FastAPI analyses once: the other
    routes are copies of the first under their own path, name and description (analysing the
    same signature 42 times was 0.03-0.04 s of every server's start)."""
    first: APIRoute | None = None
    for collection in collections:
        path = f"/{collection.path}"
        name = f"empty_{collection.path.replace('/', '_')}"
        description = f"/{collection.path}: no {collection.item} objects in Keepstone."
        if first is None:
            router.add_api_route(
                path, empty_list, methods=["GET"], name=name, description=description
            )
            first = router.routes[-1]  # type: ignore[assignment]
            assert first is not None
        else:
            router.routes.append(_copied(first, router.prefix + path, name, description))
        _ITEMS[router.prefix + path] = collection.item


def _copied(first: APIRoute, path: str, name: str, description: str) -> APIRoute:
    """``first`` at another path without parameters: its analysis (the handler's signature and
    dependencies, which no path parameter enters) is shared, as ``api.vb365.versions`` shares a
    handler's between versions; what FastAPI derives from the path and the name is made again."""
    route = copy.copy(first)
    route.path = path
    route.path_regex, route.path_format, route.param_convertors = compile_path(path)
    route.name = name
    route.description = description
    route.unique_id = route.operation_id or generate_unique_id(route)
    return route


def _service_root(
    path: str, root: str, kind: str, lists: tuple[tuple[str, str], ...]
) -> Callable[..., Response]:
    def handler(request: Request, who: Who) -> Response:
        references = [Link("Down", who.href(p), f"{item}ReferenceList") for p, item in lists]
        entities = [Link("Down", entity_href(who.href(p)), f"{item}List") for p, item in lists]
        return answer(
            request,
            element(root, {"Href": who.href(path), "Type": kind}, links_of(*references, *entities)),
        )

    handler.__name__ = f"service_{path}"
    return handler


_add_empty_lists(empty_collections())
for _path, _root, _kind, _lists in SERVICES:
    router.add_api_route(f"/{_path}", _service_root(_path, _root, _kind, _lists), methods=["GET"])


@router.get("/lookupSvc")
def lookup_service(request: Request, who: Who) -> Response:
    """The lookup service (``LookupSvc``): up to the caller's logon session. Its lookups find
    objects of virtual infrastructure hierarchies, which Keepstone has none of."""
    return answer(
        request,
        element(
            "LookupSvc",
            {"Href": who.href("lookupSvc"), "Type": "LookupService"},
            links_of(Link("Up", who.href("logonSessions", who.logon_session_id), "LogonSession")),
        ),
    )
