"""A read-only client that GETs every JSON-dialect path the app serves, the way monitoring tools
read: list a collection, then every entity of it, then its sub-collections.

Path parameters are filled from the API itself: ``{x}`` takes the ids of the collection the path
names just before it (``/Organizations/{org_id}/Users/{user_id}`` lists ``/Organizations``, then
``/Organizations/<id>/Users``). A page is read to its end through its ``next`` links, at a small
``limit`` so that every list longer than it spans several pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tests.conftest import Api
from tests.contract.openapi import served_routes

PAGE_LIMIT = 2  # small: lists of three or more items span pages
ALL = 10_000  # the vendor's largest limit: one request lists everything
MAX_IDS = 2  # entities read per collection: enough to catch a wrong id, not a combinatorial walk
_PARAM = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True)
class Response:
    template: str  # the route, e.g. /v8/Organizations/{org_id}/Users
    path: str  # the request path (query included)
    status: int
    content_type: str
    body: bytes
    json: Any


@dataclass
class Crawl:
    version: int
    responses: list[Response] = field(default_factory=list)
    listed: dict[str, list[Any]] = field(default_factory=dict)  # concrete list path -> items

    def lists(self) -> Iterator[tuple[str, str, list[Any]]]:
        """(template, concrete path, every item read through its pages) of each list read."""
        for response in self.responses:
            if response.path in self.listed:
                yield response.template, response.path, self.listed[response.path]


def get_templates(app: Any, version: int) -> list[str]:
    """Every GET route of one version, shortest first (collections before their entities)."""
    prefix = f"/v{version}/"
    found = {path for method, path in served_routes(app.routes) if method == "GET"}
    return sorted((p for p in found if p.startswith(prefix)), key=lambda p: (p.count("/"), p))


def relative(href: str) -> str:
    parts = urlsplit(href)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def items_of(body: Any) -> list[Any] | None:
    """The items of a list answer (a page's ``results`` or a bare array); None for an entity."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get("results"), list) and "offset" in body:
        return list(body["results"])
    return None


class Crawler:
    def __init__(self, api: Api, version: int, known: Mapping[str, list[str]]) -> None:
        """``known``: ids of parameters no collection lists (``task_id``)."""
        self.api, self.crawl, self.known = api, Crawl(version), known
        self._ids: dict[str, list[str]] = {}

    def read(self, templates: list[str]) -> Crawl:
        for template in templates:
            for path in self._expand(template):
                self._get(template, path)
        return self.crawl

    def _get(self, template: str, path: str) -> Response:
        response = self.api.get(path)
        body = response.json() if "json" in response.headers.get("content-type", "") else None
        answer = Response(
            template,
            path,
            response.status_code,
            response.headers.get("content-type", ""),
            response.content,
            body,
        )
        self.crawl.responses.append(answer)
        items = items_of(body)
        if items is not None and response.status_code == 200:
            self.crawl.listed[path] = self._every_item(path, body, items)
        return answer

    def _every_item(self, path: str, first: Any, items: list[Any]) -> list[Any]:
        """Every item of a list: a bare array as it is; a page followed to its end from a
        small first page."""
        if isinstance(first, list):
            return items
        collected: list[Any] = []
        href: str | None = f"{path}{'&' if '?' in path else '?'}limit={PAGE_LIMIT}"
        while href is not None:
            response = self.api.get(href)
            assert response.status_code == 200, f"GET {href}: {response.text}"
            page = response.json()
            collected += page["results"]
            href = relative(page["_links"]["next"]["href"]) if "next" in page["_links"] else None
            assert len(collected) <= ALL, f"{path}: the next links do not end"
        return collected

    def _expand(self, template: str) -> list[str]:
        """The concrete paths of a template, every parameter filled with listed ids."""
        paths = [""]
        for segment in template.split("/")[1:]:
            match = _PARAM.fullmatch(segment)
            if match is None:
                paths = [f"{path}/{segment}" for path in paths]
            else:
                paths = [
                    f"{path}/{identifier}"
                    for path in paths
                    for identifier in self._ids_of(match.group(1), path)[:MAX_IDS]
                ]
        return paths

    def _ids_of(self, name: str, collection: str) -> list[str]:
        if name in self.known:
            return list(self.known[name])
        if collection not in self._ids:
            response = self.api.get(f"{collection}?limit={ALL}")
            assert response.status_code == 200, f"GET {collection}: {response.text}"
            self._ids[collection] = [str(item["id"]) for item in items_of(response.json()) or []]
        return self._ids[collection]


def null_fields(body: Any, pointer: str = "") -> Iterator[str]:
    """JSON pointers (array indices as ``[]``) of the properties whose value is null."""
    if isinstance(body, dict):
        for key, value in body.items():
            where = f"{pointer}/{key}"
            if value is None:
                yield where
            else:
                yield from null_fields(value, where)
    elif isinstance(body, list):
        for value in body:
            yield from null_fields(value, f"{pointer}/[]")
