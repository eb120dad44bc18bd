"""The collections Keepstone has no objects of (replicas, VM restore points, agents, NAS, Cloud
Connect, ...), and the service roots that list them: each answers, empty, in the vendor's shape.

Without ``format`` a list is ``EntityReferences``; with ``format=Entity`` it is the list's own
root element, as RestAPI.xsd names it (``ReplicaJobSessions``). Lists newer than the shipped
schema (agents, NAS, CDP, external repositories) use the vendor's plural (``NasJobs``), the
vendor's rule for list types (``XList`` -> plural root), outside the schema.
"""

from collections.abc import Callable

from fastapi import APIRouter, Request
from starlette.responses import Response

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


def _empty_list(collection: Collection) -> Callable[..., Response]:
    def handler(request: Request, who: Who, format: str = "References") -> Response:
        del who
        # Named at the first request, not at import: reading RestAPI.xsd took 0.4 s of each
        # server start (list_root caches it).
        if format.lower() == "entity":
            return answer(request, element(entity_list_root(collection.item)))
        return answer(request, element("EntityReferences"))

    handler.__name__ = f"empty_{collection.path.replace('/', '_')}"
    handler.__doc__ = f"/{collection.path}: no {collection.item} objects in Keepstone."
    return handler


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


for _collection in empty_collections():
    router.add_api_route(f"/{_collection.path}", _empty_list(_collection), methods=["GET"])
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
