"""The vendor's OpenAPI 3.0 specs (``reference/vb365-openapi``) as a response validator.

``Spec(version)`` knows the operations of one spec, finds the template a concrete request path
belongs to (case-insensitively, literal segments beating ``{param}`` ones, as the vendor's router
does) and checks a response against what the operation declares: the status, an empty body where
no content is declared, and JSON bodies against their schema with OpenAPI 3.0 semantics
(``nullable``, ``$ref`` into ``#/components``, annotations ignored) and strict formats: ``uuid``,
``date-time`` (RFC 3339), ``int32`` and ``int64``.

``implemented_operations(app, version)`` intersects a spec with the routes a FastAPI app serves.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi.routing import iter_route_contexts
from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from starlette.routing import BaseRoute, Mount, Route

SPEC_DIR = Path(__file__).resolve().parents[2] / "reference" / "vb365-openapi"
VERSIONS = (6, 7, 8)
METHODS = ("get", "post", "put", "patch", "delete")
ERROR_SCHEMA_REF = "#/components/schemas/RESTExceptionInfo"
EXCERPT_CHARS = 300

Operation = tuple[str, str]  # (METHOD, spec template), e.g. ("GET", "/v8/Jobs/{jobId}")
Segments = tuple[str | None, ...]  # a template's segments: lower-case literals, None for {param}


@functools.cache
def load_spec(version: int) -> dict[str, Any]:
    """The vendor's spec of ``version`` (6, 7 or 8), parsed once. Treat it as read-only: pass
    ``copy.deepcopy(load_spec(v))`` to anything that may change it."""
    if version not in VERSIONS:
        raise ValueError(f"no vendor spec v{version}; there are {', '.join(map(str, VERSIONS))}")
    document: dict[str, Any] = json.loads(
        (SPEC_DIR / f"vb365_rest_v{version}.json").read_text(encoding="utf-8")
    )
    return document


# ---- formats ------------------------------------------------------------------------------------

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)
INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
FORMATS = FormatChecker(formats=())


def is_uuid(instance: object) -> bool:
    """Canonical 8-4-4-4-12 hex digits (no braces, no URN prefix, no missing dashes)."""
    return not isinstance(instance, str) or _UUID.match(instance) is not None


def is_date_time(instance: object) -> bool:
    """RFC 3339: a full date, a time with seconds, optional fraction, and ``Z`` or an offset."""
    if not isinstance(instance, str):
        return True
    if _RFC3339.match(instance) is None:
        return False
    try:
        datetime.fromisoformat(instance.upper().replace("Z", "+00:00"))
    except ValueError:  # 2026-02-30, 25:00:00, ...
        return False
    return True


def _integer_format(low: int, high: int) -> Callable[[object], bool]:
    def in_range(instance: object) -> bool:
        if isinstance(instance, bool):
            return True
        if isinstance(instance, float):  # 3.0 is an integer in JSON; the "type" keyword decides
            return instance.is_integer() and low <= instance <= high
        return not isinstance(instance, int) or low <= instance <= high

    return in_range


FORMATS.checks("uuid")(is_uuid)
FORMATS.checks("date-time")(is_date_time)
for _name, (_low, _high) in INT_RANGES.items():
    FORMATS.checks(_name)(_integer_format(_low, _high))


# ---- OpenAPI 3.0 schema -> JSON Schema draft 4 --------------------------------------------------

# Annotations, and keywords that say nothing about a response's validity.
IGNORED_KEYWORDS = frozenset(
    {
        "nullable",
        "readOnly",
        "writeOnly",
        "example",
        "examples",
        "discriminator",
        "xml",
        "externalDocs",
        "deprecated",
        "description",
        "title",
    }
)
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
SCHEMA_VALUES = ("items", "additionalProperties", "not")


def to_json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema object as JSON Schema draft 4: ``nullable: true`` admits ``null``
    (also in ``enum``, and around a ``$ref``/``allOf`` wrapper), annotations and ``x-*``
    extensions are dropped, ``$ref``s are kept as they are (``#/components/...``)."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    schema: dict[str, Any] = {}
    for key, value in node.items():
        if key in IGNORED_KEYWORDS or key.startswith("x-"):
            continue
        if key == "properties" and isinstance(value, dict):
            schema[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in SCHEMA_LISTS and isinstance(value, list):
            schema[key] = [to_json_schema(sub) for sub in value]
        elif key in SCHEMA_VALUES and isinstance(value, dict):
            schema[key] = to_json_schema(value)
        else:
            schema[key] = value
    if node.get("nullable") is True:
        if "enum" in schema and None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]
        if "type" in schema:
            kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            schema["type"] = [*kinds, "null"] if "null" not in kinds else kinds
        else:
            schema = {"anyOf": [{"type": "null"}, schema]}
    return schema


def _pointer(parts: Iterable[str | int]) -> str:
    """An RFC 6901 JSON pointer, shown as ``/`` for the document itself."""
    escaped = [str(part).replace("~", "~0").replace("/", "~1") for part in parts]
    return "/" + "/".join(escaped)


def _excerpt(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace")
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + f"... ({len(text)} chars)"


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_json_media_type(content_type: str) -> bool:
    media = _media_type(content_type)
    return media == "application/json" or media.endswith("+json")


def _segments(template: str) -> Segments:
    return tuple(
        None if part.startswith("{") and part.endswith("}") else part.lower()
        for part in template.strip("/").split("/")
    )


def normalise(template: str) -> str:
    """A template in comparable form: ``/v8/Jobs/{jobId}`` -> ``/v8/jobs/{}``."""
    return "/" + "/".join("{}" if part is None else part for part in _segments(template))


# ---- one spec -----------------------------------------------------------------------------------


class Spec:
    """The operations and response declarations of the vendor's spec of one version."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.document = load_spec(version)
        paths: dict[str, Any] = self.document["paths"]
        self._operations: dict[Operation, dict[str, Any]] = {
            (method.upper(), template): item[method]
            for template, item in paths.items()
            for method in METHODS
            if isinstance(item.get(method), dict)
        }
        self._by_length: dict[int, list[tuple[Segments, str]]] = {}
        for template in paths:
            segments = _segments(template)
            self._by_length.setdefault(len(segments), []).append((segments, template))
        # Every schema converted once; response schemas refer into this tree with "#/components".
        self._components = to_json_schema_components(self.document.get("components", {}))
        self._validators: dict[str, Draft4Validator] = {}

    def operations(self) -> set[Operation]:
        return set(self._operations)

    def operation(self, method: str, template: str) -> dict[str, Any]:
        return self._operations[(method.upper(), template)]

    def templates(self) -> list[str]:
        return list(self.document["paths"])

    def match(self, method: str, path: str) -> str | None:
        """The template of a concrete request path (the query is ignored). Segments compare
        case-insensitively; among several matching templates the one with literal segments
        where the others have parameters wins (leftmost first), preferring templates that have
        ``method``."""
        path = path.split("?", 1)[0].split("#", 1)[0]
        if len(path) > 1:
            path = path.rstrip("/") or "/"
        concrete = path.strip("/").split("/")
        lowered = [part.lower() for part in concrete]
        found = [
            (segments, template)
            for segments, template in self._by_length.get(len(concrete), [])
            if all(
                given != "" if part is None else part == given  # a parameter takes any segment
                for part, given in zip(segments, lowered, strict=True)
            )
        ]
        if not found:
            return None
        with_method = [
            (segments, template)
            for segments, template in found
            if (method.upper(), template) in self._operations
        ]

        def literalness(candidate: tuple[Segments, str]) -> tuple[bool, ...]:
            return tuple(part is not None for part in candidate[0])

        return max(with_method or found, key=literalness)[1]

    # ---- responses ------------------------------------------------------------------------------

    def check_response(
        self, method: str, path: str, status: int, content_type: str, body: bytes
    ) -> None:
        """Raise ``AssertionError`` unless the response is one the operation declares."""
        method = method.upper()
        template = self.match(method, path)
        if template is None or (method, template) not in self._operations:
            raise AssertionError(f"v{self.version} spec has no operation for {method} {path}")
        where = f"{method} {template} -> {status}"
        responses: dict[str, Any] = self._operations[(method, template)].get("responses", {})
        key = _declared_status(responses, status)
        if key is None:
            declared = ", ".join(sorted(responses))
            raise AssertionError(
                f"{where}: status {status} is not declared (declared: {declared}); "
                f"body: {_excerpt(body)}"
            )
        declaration: dict[str, Any] = responses[key]
        content: dict[str, Any] = declaration.get("content") or {}
        if not content:
            if body.strip():
                raise AssertionError(
                    f"{where}: the spec declares no content, but the body is: {_excerpt(body)}"
                )
            if status >= 400:
                raise AssertionError(f"{where}: an error needs a body with a message")
            return
        schema_key = _json_content_key(content, content_type)
        if schema_key is None:  # application/octet-stream and the like: the status is enough
            if status >= 400:
                raise AssertionError(
                    f"{where}: an error must be JSON, not {content_type!r}: {_excerpt(body)}"
                )
            return
        if schema_key == "application/json" and not is_json_media_type(content_type):
            raise AssertionError(
                f"{where}: the spec declares application/json, the response is "
                f"{content_type!r}: {_excerpt(body)}"
            )
        if not body.strip():
            raise AssertionError(
                f"{where}: the spec declares {schema_key} content, the body is empty"
            )
        try:
            instance = json.loads(body)
        except ValueError as error:
            raise AssertionError(
                f"{where}: the body is not JSON ({error}): {_excerpt(body)}"
            ) from None
        schema = content[schema_key].get("schema")
        if schema is not None:
            self.validate(schema, instance, where=where, body=body)
        if status >= 400:
            self.validate({"$ref": ERROR_SCHEMA_REF}, instance, where=where, body=body)
            message = instance.get("message") if isinstance(instance, dict) else None
            if not isinstance(message, str) or not message.strip():
                raise AssertionError(
                    f"{where}: an error body needs a non-empty 'message' string: {_excerpt(body)}"
                )

    def validate(
        self, schema: dict[str, Any], instance: Any, *, where: str = "", body: bytes | None = None
    ) -> None:
        """Validate ``instance`` against an OpenAPI schema of this spec (``{"$ref": ...}`` or
        inline); raise ``AssertionError`` naming the failing instance's JSON pointer."""
        error = best_match(self._validator(schema).iter_errors(instance))
        if error is None:
            return
        shown = body if body is not None else json.dumps(instance).encode()
        raise AssertionError(_describe(where, error, shown))

    def _validator(self, schema: dict[str, Any]) -> Draft4Validator:
        cache_key = json.dumps(schema, sort_keys=True)
        validator = self._validators.get(cache_key)
        if validator is None:
            root = {"components": self._components, "allOf": [to_json_schema(schema)]}
            validator = Draft4Validator(root, format_checker=FORMATS)
            self._validators[cache_key] = validator
        return validator


def to_json_schema_components(components: dict[str, Any]) -> dict[str, Any]:
    return {
        kind: {name: to_json_schema(schema) for name, schema in group.items()}
        if kind == "schemas"
        else group
        for kind, group in components.items()
    }


def _declared_status(responses: dict[str, Any], status: int) -> str | None:
    if str(status) in responses:
        return str(status)
    wildcard = f"{status // 100}XX"
    for key in responses:
        if key.upper() == wildcard:
            return key
    # 2xx and 3xx are declared exactly by the vendor; only errors fall back to "default".
    if status >= 400 and "default" in responses:
        return "default"
    return None


def _json_content_key(content: dict[str, Any], content_type: str) -> str | None:
    """Which declared media type holds the JSON schema to check, if any."""
    if "application/json" in content:
        return "application/json"
    for key in content:
        if _media_type(key).endswith("+json"):
            return key
    wildcard = content.get("*/*")
    if wildcard is not None and wildcard.get("schema") is not None:
        if "application/octet-stream" in content and not is_json_media_type(content_type):
            return None
        return "*/*"
    return None


def _describe(where: str, error: ValidationError, body: bytes) -> str:
    pointer = _pointer(error.absolute_path)
    parts = list(error.absolute_schema_path)
    if parts[:2] == ["allOf", 0]:  # the wrapper Spec._validator puts around every schema
        parts = parts[2:]
    schema_path = "/".join(str(part) for part in parts)
    return (
        f"{where}: instance at {pointer}: {error.message}\n"
        f"  (schema keyword {error.validator!r} at {schema_path})\n"
        f"  body: {_excerpt(body)}"
    )


@functools.cache
def spec(version: int) -> Spec:
    """The ``Spec`` of ``version``, built once."""
    return Spec(version)


def spec_copy(version: int) -> dict[str, Any]:
    """A private deep copy of the spec document, for libraries that may change it."""
    return copy.deepcopy(load_spec(version))


# ---- what an app serves -------------------------------------------------------------------------


def served_routes(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[Operation]:
    """(METHOD, path template) of every HTTP route, included routers and mounted
    sub-applications included. FastAPI keeps an included router as one lazy entry of
    ``app.routes``; ``iter_route_contexts`` expands it into its routes with their full paths."""
    for context in iter_route_contexts(routes):
        route = context.original_route
        if isinstance(route, Mount):
            yield from served_routes(route.routes, prefix + route.path)
        elif isinstance(route, Route) and context.methods and context.path:
            for method in context.methods:
                yield method.upper(), prefix + context.path


def implemented_operations(app: Any, version: int) -> set[Operation]:
    """The operations of the v``version`` spec (METHOD, spec template) that ``app`` serves.

    Literal segments compare case-insensitively and any ``{param}`` equals any ``{param}``;
    a route whose segment is a parameter where the spec has a literal (or the reverse) is not
    the spec's operation. Routes that are not in the spec are not part of the result."""
    prefix = f"/v{version}/"
    served = {
        (method, normalise(path))
        for method, path in served_routes(app.routes)
        if path.lower().startswith(prefix)
    }
    return {
        (method, template)
        for method, template in spec(version).operations()
        if (method, normalise(template)) in served
    }
