"""Every read of veeam-365, a Python SDK for Veeam Backup for Microsoft 365 written by others
(Cenvora's, on PyPI, generated from the vendor's OpenAPI specs by openapi-python-client), made
against a server: the SDK's own request and its own parsing of each answer into its models.

A generated SDK is stricter than a script: each answer is turned into attrs models field by
field, so a null where it expects an enum, or a list where it expects an object, raises where a
``jq`` query would print ``null``. What is read: each ``*_get*`` operation of v6, v7 and v8 whose
path parameters can be filled from the API's own lists (a job, an organization, a repository, a
proxy, a job session, a restore point, an organization user)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from veeam_365.client import _import_with_unset_patch as import_with_unset_patch

VERSIONS = ("v6", "v7", "v8")
NOT_SERVED = "no resource at "  # how Keepstone answers a path it serves no route for


@dataclass(frozen=True)
class Read:
    version: str
    operation: str  # the SDK's module: job_get_by_id
    url: str
    status: int
    outcome: str  # "parsed" | "not served" | "refused" | an exception's text


def ids_from_lists(base: str, token: str) -> dict[str, list[str]]:
    """Ids for the SDK's path parameters, by parameter name, from the server's own lists."""
    headers = {"Authorization": f"Bearer {token}"}

    def listed(path: str) -> list[str]:
        body = httpx.get(base + path, headers=headers).json()
        items = body["results"] if isinstance(body, dict) and "results" in body else body
        return [str(item["id"]) for item in items] if isinstance(items, list) else []

    organizations = listed("/v8/Organizations")
    known = {
        "job_id": listed("/v8/Jobs?limit=100"),
        "organization_id": organizations,
        "repository_id": listed("/v8/BackupRepositories"),
        "proxy_id": listed("/v8/Proxies"),
        "job_session_id": listed("/v8/JobSessions"),
        "restore_point_id": listed("/v8/RestorePoints"),
        "user_id": listed(f"/v8/Organizations/{organizations[0]}/Users") if organizations else [],
    }
    known["session_id"] = known["job_sessions_id"] = known["job_session_id"]
    known["backup_repository_id"] = known["repository_id"]
    return known


def read_everything(base: str, token: str) -> Iterator[Read]:
    known = ids_from_lists(base, token)
    for version in VERSIONS:
        yield from _read_version(base, token, version, known)


def _read_version(
    base: str, token: str, version: str, known: dict[str, list[str]]
) -> Iterator[Read]:
    package = f"veeam_365.{version}"
    client_module = importlib.import_module(f"{package}.client")
    client = client_module.AuthenticatedClient(base_url=base, token=token)
    api = importlib.import_module(f"{package}.api")
    for found in pkgutil.walk_packages(api.__path__, f"{api.__name__}."):
        name = found.name.rsplit(".", 1)[1]
        if found.ispkg or "_get" not in name:
            continue
        # as the SDK's own client imports an operation (its generated modules name Unset in
        # annotations without importing it; the helper lends it for the import alone)
        module = import_with_unset_patch(found.name, package)
        arguments = _arguments(module.sync_detailed, known)
        if arguments is None:
            continue
        url = module._get_kwargs(**arguments)["url"]
        try:
            response = module.sync_detailed(client=client, **arguments)
        except Exception as error:  # the SDK could not read the answer
            yield Read(version, name, url, 0, f"{type(error).__name__}: {error}")
            continue
        yield Read(version, name, url, int(response.status_code), _outcome(response))


def _arguments(operation: Any, known: dict[str, list[str]]) -> dict[str, Any] | None:
    """The operation's required arguments from ``known``; None when one cannot be filled."""
    arguments: dict[str, Any] = {}
    for parameter in inspect.signature(operation).parameters.values():
        if parameter.name == "client" or parameter.default is not inspect.Parameter.empty:
            continue
        values = known.get(parameter.name)
        if not values:
            return None
        is_uuid = "UUID" in str(parameter.annotation)
        arguments[parameter.name] = uuid.UUID(values[0]) if is_uuid else values[0]
    return arguments


def _outcome(response: Any) -> str:
    if response.status_code < 300:
        parsed = response.parsed
        kind = type(parsed).__name__
        return "parsed" if kind != "RESTExceptionInfo" else f"an error model for a {kind}"
    body = response.content.decode("utf-8", "replace")
    return "not served" if NOT_SERVED in body else "refused"
