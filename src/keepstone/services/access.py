"""What a user without a global role may reach: the organizations, users and operations its
organization roles (``services.rbac``) grant it. Global ``Administrator`` and ``ReadOnly`` users
pass ``auth.authorize`` as before; this module decides for everyone else.

Two layers, both here so the API and the console apply the same rules:

- ``admit`` at the door of every request of both dialects: an operation a scoped operator may
  ever perform is listed in ``OPERATIONS`` (by method and route template, the version prefix
  dropped); anything else is a 403, whatever the resource. A route added to the app is refused
  to scoped operators until it is listed here (``tests/api/test_rbac_routes.py`` calls every
  route). ``admit`` also reads the caller's ``Scope`` and writes one audit event per request.
- the resource checks the listed operations' services make with that scope: an organization,
  restore point, restore session, mailbox or drive outside it is a 404, never its data
  (``require_organization``, ``require_user``, ``organizations_of``).
"""

from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass

from sqlalchemy import select

from keepstone.domain.errors import Forbidden, NotFound
from keepstone.domain.scope import stable_user_id
from keepstone.services import audit
from keepstone.services.audit import AuditAction, Entry, Origin
from keepstone.services.auth import Principal
from keepstone.services.context import Context
from keepstone.store.tables import RbacItem, RbacOperator, RbacRole


class Access(enum.StrEnum):
    """What a role lets its operators do in its organization."""

    RESTORE = "Restore"  # read, explore, save, export, put back the users in scope
    READ_ONLY = "ReadOnly"  # read the organization, its restore points and restore sessions


@dataclass(frozen=True, slots=True)
class Grant:
    """One role's reach: an organization, and which of its users (None: all of them), each by
    ``stable_user_id(organization, name)``."""

    organization_id: str
    access: Access
    selected: frozenset[str] | None
    excluded: frozenset[str]

    def covers(self, user_id: str) -> bool:
        return user_id not in self.excluded and (self.selected is None or user_id in self.selected)


@dataclass(frozen=True, slots=True)
class Scope:
    """Every grant of a caller's roles; an organization or user is reachable if any grant
    reaches it (roles add up, never subtract)."""

    grants: tuple[Grant, ...] = ()

    def organizations(self, access: Access | None = None) -> frozenset[str]:
        return frozenset(g.organization_id for g in self.grants if access in (None, g.access))

    def covers(self, organization_id: str, user_id: str, access: Access | None = None) -> bool:
        return any(
            g.organization_id == organization_id
            and access in (None, g.access)
            and g.covers(user_id)
            for g in self.grants
        )


EMPTY = Scope()

# ---- the operations a scoped operator may ever perform --------------------------------------

_BROWSE = "/RestoreSessions/{session_id}/Organization/{collection}/{owner_id}"
_ITEMS = {"Mailboxes": "Items", "OneDrives": "Documents"}


def _restore_operations() -> set[tuple[str, str]]:
    found = {
        ("POST", "/Organizations/{org_id}/explore"),
        ("POST", "/Jobs/{job_id}/explore"),
        ("POST", "/RestoreSessions/{session_id}/stop"),
        ("POST", "/RestoreSessions/{session_id}/Action"),
        ("POST", "/Organizations/{org_id}/Action"),  # v2-v5: explore
    }
    for collection, items in _ITEMS.items():
        base = _BROWSE.replace("{collection}", collection)
        found |= {
            ("GET", base.removesuffix("/{owner_id}")),
            ("GET", base),
            ("GET", f"{base}/Folders"),
            ("GET", f"{base}/Folders/{{folder_id}}"),
            ("GET", f"{base}/{items}"),
            ("POST", f"{base}/{items}/save"),
            ("POST", f"{base}/{items}/{{item}}/save"),
        }
        # v2-v5: the same put-backs and saves as one /Action body (api/vb365/actions.py)
        found |= {
            ("POST", f"{base}/Action"),
            ("POST", f"{base}/{items}/Action"),
            ("POST", f"{base}/{items}/{{item}}/Action"),
            ("POST", f"{base}/Folders/{{folder}}/Action"),
        }
        for action in ("restore", "restoreTo", "copyTo"):
            found |= {
                ("POST", f"{base}/{action}"),
                ("POST", f"{base}/{items}/{action}"),
                ("POST", f"{base}/{items}/{{item}}/{action}"),
            }
    return found


_READ_OPERATIONS = {
    ("GET", "/Organizations"),
    ("GET", "/Organizations/{org_id}"),
    ("GET", "/Organizations/{org_id}/Users"),
    ("GET", "/Organizations/{org_id}/Users/{user_id}"),
    ("GET", "/RestorePoints"),
    ("GET", "/RestorePoints/{point_id}"),
    ("GET", "/RestoreSessions"),
    ("GET", "/RestoreSessions/{session_id}"),
    ("GET", "/RestoreSessions/{session_id}/Events"),
    ("GET", "/RestoreSessions/{session_id}/Statistics"),
    # a task it started (an asynchronous put-back): tasks.get refuses anyone else's with a 404
    ("GET", "/Tasks/{task_id}"),
    # Enterprise Manager: the restore points of its organizations
    ("GET", "/api/restorePoints"),
    ("GET", "/api/restorePoints/{point_id}"),
}

# operation -> the least access it needs
OPERATIONS: dict[tuple[str, str], Access] = {
    **{operation: Access.READ_ONLY for operation in _READ_OPERATIONS},
    **{operation: Access.RESTORE for operation in _restore_operations()},
}
_VERSION = re.compile(r"^/v\d+(?=/)")


def operation_of(method: str, route: str) -> tuple[str, str]:
    """A request's operation: its method and route template without the ``/vN`` prefix."""
    return method.upper(), _VERSION.sub("", route)


def admit(
    ctx: Context, caller: Principal, method: str, route: str, path: str, origin: Origin
) -> Principal:
    """The caller with its scope, if a scoped operator may perform this operation at all (the
    resource itself is checked by the service); else a 403. Either way the request is in the
    audit trail: everything a scoped operator does or tries is."""
    operation = operation_of(method, route)
    return admit_for(ctx, caller, OPERATIONS.get(operation), operation, path, origin)


def admit_for(
    ctx: Context,
    caller: Principal,
    needed: Access | None,
    operation: tuple[str, str],
    path: str,
    origin: Origin,
) -> Principal:
    """``admit`` for an operation that needs ``needed`` (None: one no scoped operator may
    perform); the console's restore pages name what each of theirs needs."""
    assert caller.scoped, "global roles are authorised by auth.authorize"
    scope = scope_of(ctx, caller.user_id)
    allowed = needed is not None and (
        bool(scope.organizations(Access.RESTORE))
        if needed is Access.RESTORE
        else bool(scope.grants)
    )
    method = operation[0]
    audit.record(
        ctx,
        Entry(
            AuditAction.OPERATOR_REQUEST,
            caller.user_name,
            origin,
            success=allowed,
            details={"method": method, "path": path[:1000]},
        ),
    )
    if not allowed:
        raise Forbidden(
            f"user '{caller.user_name}' has no global role, and its organization roles do not "
            f"allow {method} {operation[1]}"
        )
    return dataclasses.replace(caller, scope=scope)


def scope_of(ctx: Context, user_id: str) -> Scope:
    """The grants of every role naming the user as an operator: two reads, whatever the number
    of roles and items."""
    with ctx.db.read() as s:
        roles = list(
            s.scalars(
                select(RbacRole)
                .join(RbacOperator, RbacOperator.role_id == RbacRole.id)
                .where(RbacOperator.user_id == user_id)
            )
        )
        items = list(
            s.execute(
                select(RbacItem.role_id, RbacItem.excluded, RbacItem.name).where(
                    RbacItem.role_id.in_([r.id for r in roles])
                )
            )
        )
    # Users are keyed as restore sessions key the owners of mailboxes and drives: by name, in
    # their organization (an Office365 user's vendor id is not what a backup records).
    organization_of = {role.id: role.organization_id for role in roles}
    chosen: dict[tuple[str, bool], set[str]] = {}
    for role_id, excluded, name in items:
        key = stable_user_id(organization_of[role_id], name)
        chosen.setdefault((role_id, excluded), set()).add(key)
    return Scope(
        tuple(
            Grant(
                role.organization_id,
                Access(role.access),
                None
                if role.role_type == "EntireOrganization"
                else frozenset(chosen.get((role.id, False), ())),
                frozenset(chosen.get((role.id, True), ())),
            )
            for role in roles
        )
    )


# ---- the checks of the services -----------------------------------------------------------------


def reach(caller: Principal | None) -> Scope | None:
    """The caller's scope; None when nothing limits it (a global role, or the server itself)."""
    if caller is None or not caller.scoped:
        return None
    return caller.scope or EMPTY


def organizations_of(caller: Principal | None) -> frozenset[str] | None:
    """The organizations the caller may read; None: every one."""
    scope = reach(caller)
    return None if scope is None else scope.organizations()


def require_organization(
    caller: Principal | None, organization_id: str | None, what: str, access: Access | None = None
) -> None:
    """A 404 naming ``what`` unless the caller may reach the organization (with ``access``)."""
    scope = reach(caller)
    if scope is not None and (
        organization_id is None or organization_id not in scope.organizations(access)
    ):
        raise NotFound(f"{what} does not exist")


def covers_user(
    caller: Principal | None, organization_id: str, user_id: str, access: Access | None = None
) -> bool:
    scope = reach(caller)
    return scope is None or scope.covers(organization_id, user_id, access)


def covers_user_named(caller: Principal | None, organization_id: str, name: str) -> bool:
    """Whether a user of the organization, by name (a mailbox's or drive's owner), is within
    the caller's restore scope."""
    return covers_user(
        caller, organization_id, stable_user_id(organization_id, name), Access.RESTORE
    )


def require_user(caller: Principal | None, organization_id: str, user_id: str, what: str) -> None:
    if not covers_user(caller, organization_id, user_id, Access.RESTORE):
        raise NotFound(f"{what} does not exist")
