"""Organization roles in the vendor's model (``RESTRbacRole``): a role belongs to one
organization, names its operators (Keepstone users without a global role) and the organization's
users in its scope (selected, less excluded; all of them for ``EntireOrganization``), and what
its operators may do there (``access.Access``: restore, or read only).

Every change is written with an audit event in the same transaction. What a role grants is
enforced by ``services.access``; this module only keeps roles.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from keepstone.domain.errors import Conflict, InvalidInput, NotFound
from keepstone.domain.scope import stable_user_id
from keepstone.services import audit, catalog, m365_directory, m365_settings
from keepstone.services.access import Access
from keepstone.services.audit import AuditAction, Entry, Origin
from keepstone.services.auth import Role
from keepstone.services.context import Context, new_id
from keepstone.store.tables import Organization, RbacItem, RbacOperator, RbacRole, User

ROLE_TYPES = ("EntireOrganization", "SpecificObjects")
MAX_NAME = 255


@dataclass(frozen=True, slots=True)
class Ref:
    """An operator or item as a request names it: its type and id (or, for an operator, its
    user name)."""

    type: str | None
    id: str | None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class RoleEdit:
    """A role's settings as sent; None: not sent (kept by an edit, defaulted by a create)."""

    organization_id: str | None = None
    name: str | None = None
    description: str | None = None
    role_type: str | None = None
    access: str | None = None
    operators: list[Ref] | None = None
    selected: list[Ref] | None = None
    excluded: list[Ref] | None = None


@dataclass(frozen=True, slots=True)
class OrgUser:
    id: str
    name: str
    display_name: str


# ---- reads -------------------------------------------------------------------------------------


def list_roles(ctx: Context, organization_id: str | None = None) -> list[RbacRole]:
    return page_roles(ctx, organization_id)


def page_roles(
    ctx: Context, organization_id: str | None = None, offset: int = 0, limit: int | None = None
) -> list[RbacRole]:
    """The roles by name (of one organization), a window of them or all."""
    query = select(RbacRole).order_by(RbacRole.name, RbacRole.id).offset(offset).limit(limit)
    with ctx.db.read() as s:
        if organization_id is not None:
            catalog.get_organization_in(s, organization_id)
            query = query.where(RbacRole.organization_id == organization_id)
        return list(s.scalars(query))


def get_role(ctx: Context, role_id: str) -> RbacRole:
    with ctx.db.read() as s:
        return _role(s, role_id)


def operators(ctx: Context, role_id: str) -> list[User]:
    with ctx.db.read() as s:
        _role(s, role_id)
        return list(
            s.scalars(
                select(User)
                .join(RbacOperator, RbacOperator.user_id == User.id)
                .where(RbacOperator.role_id == role_id)
                .order_by(User.name)
            )
        )


def operator(ctx: Context, role_id: str, user_id: str) -> User:
    for user in operators(ctx, role_id):
        if user.id == user_id:
            return user
    raise NotFound(f"role '{role_id}' has no operator '{user_id}'")


def items(ctx: Context, role_id: str, *, excluded: bool) -> list[RbacItem]:
    with ctx.db.read() as s:
        _role(s, role_id)
        return list(
            s.scalars(
                select(RbacItem)
                .where(RbacItem.role_id == role_id, RbacItem.excluded == excluded)
                .order_by(RbacItem.name, RbacItem.item_id)
            )
        )


def item(ctx: Context, role_id: str, item_id: str, *, excluded: bool) -> RbacItem:
    with ctx.db.read() as s:
        _role(s, role_id)
        found = s.get(RbacItem, (role_id, excluded, item_id))
    if found is None:
        which = "excluded" if excluded else "selected"
        raise NotFound(f"role '{role_id}' has no {which} item '{item_id}'")
    return found


# ---- changes -----------------------------------------------------------------------------------


def create_role(
    ctx: Context, organization_id: str, edit: RoleEdit, *, by: str, origin: Origin
) -> RbacRole:
    """A new role of the organization. Without ``roleType`` it covers the entire organization
    when no item is selected, else the selected ones."""
    org = catalog.get_organization(ctx, organization_id)
    _same_organization(edit, org.id)
    name = _name(edit.name)
    selected = _users(ctx, org, edit.selected or [], "selectedItems")
    excluded = _users(ctx, org, edit.excluded or [], "excludedItems")
    role_type = _role_type(edit.role_type, bool(selected))
    if role_type == "SpecificObjects" and not selected:
        raise InvalidInput(
            "a SpecificObjects role needs at least one selected item", "selectedItems"
        )
    now = ctx.clock.now()
    with ctx.db.write() as s:
        _unique_name(s, org.id, name, None)
        role = RbacRole(
            id=new_id(),
            organization_id=org.id,
            name=name,
            description=edit.description or "",
            role_type=role_type,
            access=_access(edit.access).value,
            created_at=now,
        )
        s.add(role)
        s.flush()
        _set_operators(s, role.id, _operators(s, edit.operators or []))
        _set_items(s, role.id, selected, excluded=False)
        _set_items(s, role.id, excluded, excluded=True)
        _audit(s, ctx, role, "created", by, origin)
    return role


def edit_role(ctx: Context, role_id: str, edit: RoleEdit, *, by: str, origin: Origin) -> RbacRole:
    """The vendor's PUT: what is sent replaces what the role had; what is not sent stays."""
    role = get_role(ctx, role_id)
    org = catalog.get_organization(ctx, role.organization_id)
    _same_organization(edit, org.id)
    selected = None if edit.selected is None else _users(ctx, org, edit.selected, "selectedItems")
    excluded = None if edit.excluded is None else _users(ctx, org, edit.excluded, "excludedItems")
    with ctx.db.write() as s:
        role = _role(s, role_id)
        if edit.name is not None:
            role.name = _name(edit.name)
            _unique_name(s, role.organization_id, role.name, role.id)
        if edit.description is not None:
            role.description = edit.description
        if edit.access is not None:
            role.access = _access(edit.access).value
        if selected is not None:
            _set_items(s, role.id, selected, excluded=False, replace=True)
        if excluded is not None:
            _set_items(s, role.id, excluded, excluded=True, replace=True)
        if edit.role_type is not None:
            role.role_type = _role_type(edit.role_type, False)
        has_selected = s.scalar(
            select(RbacItem.item_id).where(RbacItem.role_id == role.id, ~RbacItem.excluded)
        )
        if role.role_type == "EntireOrganization" and has_selected is not None:
            raise InvalidInput(
                "an EntireOrganization role has no selected items; use SpecificObjects",
                "roleType",
            )
        if edit.operators is not None:
            _set_operators(s, role.id, _operators(s, edit.operators), replace=True)
        _audit(s, ctx, role, "changed", by, origin)
    return role


def delete_role(ctx: Context, role_id: str, *, by: str, origin: Origin) -> None:
    with ctx.db.write() as s:
        role = _role(s, role_id)
        _audit(s, ctx, role, "removed", by, origin)
        s.delete(role)


def add_operators(ctx: Context, role_id: str, refs: list[Ref], *, by: str, origin: Origin) -> None:
    with ctx.db.write() as s:
        role = _role(s, role_id)
        _set_operators(s, role.id, _operators(s, refs))
        _audit(s, ctx, role, "operators added", by, origin)


def remove_operators(
    ctx: Context, role_id: str, ids: list[str], *, by: str, origin: Origin
) -> None:
    with ctx.db.write() as s:
        role = _role(s, role_id)
        s.execute(
            delete(RbacOperator).where(
                RbacOperator.role_id == role.id, RbacOperator.user_id.in_(ids)
            )
        )
        _audit(s, ctx, role, "operators removed", by, origin)


def add_items(
    ctx: Context, role_id: str, refs: list[Ref], *, excluded: bool, by: str, origin: Origin
) -> None:
    role = get_role(ctx, role_id)
    which = "excludedItems" if excluded else "selectedItems"
    found = _users(ctx, catalog.get_organization(ctx, role.organization_id), refs, which)
    with ctx.db.write() as s:
        role = _role(s, role_id)
        if not excluded and role.role_type == "EntireOrganization" and found:
            raise InvalidInput(
                "an EntireOrganization role has no selected items; make it SpecificObjects "
                "(PUT roleType) first",
                "selectedItems",
            )
        _set_items(s, role.id, found, excluded=excluded)
        _audit(s, ctx, role, f"{which} added", by, origin)


def remove_items(
    ctx: Context, role_id: str, ids: list[str], *, excluded: bool, by: str, origin: Origin
) -> None:
    """Removing a SpecificObjects role's last selected item leaves it reaching no one: it never
    widens to the entire organization by itself."""
    with ctx.db.write() as s:
        role = _role(s, role_id)
        s.execute(
            delete(RbacItem).where(
                RbacItem.role_id == role.id,
                RbacItem.excluded == excluded,
                RbacItem.item_id.in_(ids),
            )
        )
        which = "excludedItems" if excluded else "selectedItems"
        _audit(s, ctx, role, f"{which} removed", by, origin)


# ---- rules -------------------------------------------------------------------------------------


def _role(s: Session, role_id: str) -> RbacRole:
    role = s.get(RbacRole, role_id)
    if role is None:
        raise NotFound(f"role '{role_id}' does not exist")
    return role


def _same_organization(edit: RoleEdit, organization_id: str) -> None:
    if edit.organization_id is not None and edit.organization_id != organization_id:
        raise InvalidInput(
            f"organizationId '{edit.organization_id}' is not the role's organization "
            f"'{organization_id}'",
            "organizationId",
        )


def _name(name: str | None) -> str:
    if name is None or not name.strip():
        raise InvalidInput("a role needs a name", "name")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"a role's name has at most {MAX_NAME} characters", "name")
    return name.strip()


def _unique_name(s: Session, organization_id: str, name: str, role_id: str | None) -> None:
    clash = s.scalar(
        select(RbacRole.id).where(
            RbacRole.organization_id == organization_id,
            RbacRole.name == name,
            RbacRole.id != (role_id or ""),
        )
    )
    if clash is not None:
        raise Conflict(f"the organization already has a role named '{name}'")


def _role_type(text: str | None, selected: bool) -> str:
    if text is None:
        return "SpecificObjects" if selected else "EntireOrganization"
    for known in ROLE_TYPES:
        if text.lower() == known.lower():
            if known == "EntireOrganization" and selected:
                raise InvalidInput(
                    "an EntireOrganization role has no selected items; use SpecificObjects",
                    "roleType",
                )
            return known
    raise InvalidInput(f"roleType '{text}' is not one of {', '.join(ROLE_TYPES)}", "roleType")


def _access(text: str | None) -> Access:
    if text is None:
        return Access.RESTORE
    for known in Access:
        if text.lower() == known.value.lower():
            return known
    raise InvalidInput(
        f"access '{text}' is not one of {', '.join(a.value for a in Access)}", "access"
    )


def _operators(s: Session, refs: list[Ref]) -> list[str]:
    """The ids of the Keepstone users named: users without a global role (a global role is not
    narrowed by an organization role, so naming one would promise what it cannot keep)."""
    found: list[str] = []
    for n, ref in enumerate(refs):
        where = f"operators[{n}]"
        if (ref.type or "User").lower() != "user":
            raise InvalidInput(f"operators are Keepstone users, not '{ref.type}'", f"{where}.type")
        user = None
        if ref.id:
            user = s.get(User, ref.id)
        elif ref.name:
            user = s.scalar(select(User).where(User.name == ref.name))
        else:
            raise InvalidInput("an operator needs the id (or user.name) of a user", where)
        if user is None:
            raise InvalidInput(f"user '{ref.id or ref.name}' does not exist", where)
        if user.role != Role.NONE.value:
            raise InvalidInput(
                f"user '{user.name}' has the global role {user.role}, which an organization role "
                "cannot narrow; operators are users with the global role None",
                where,
            )
        found.append(user.id)
    return list(dict.fromkeys(found))


def _users(ctx: Context, org: Organization, refs: list[Ref], where: str) -> list[OrgUser]:
    """The organization's users the items name (by the id ``/Organizations/{id}/Users`` lists,
    or by name); Keepstone scopes users, whose mailboxes and drives come with them."""
    if not refs:
        return []
    known = organization_users(ctx, org)
    by_key = {u.id.lower(): u for u in known} | {u.name.lower(): u for u in known}
    found: list[OrgUser] = []
    for n, ref in enumerate(refs):
        if (ref.type or "User").lower() != "user":
            raise InvalidInput(
                f"Keepstone scopes organization users (type User), not '{ref.type}'",
                f"{where}[{n}].type",
            )
        key = (ref.id or ref.name or "").lower()
        if key not in by_key:
            raise InvalidInput(
                f"organization '{org.name}' has no user '{ref.id or ref.name}'", f"{where}[{n}]"
            )
        found.append(by_key[key])
    return list({u.id: u for u in found}.values())


def organization_users(ctx: Context, org: Organization) -> list[OrgUser]:
    if org.type == m365_settings.OFFICE365_TYPE:
        return [
            OrgUser(m365_directory.vendor_id(u.graph_id, u.onprem_guid), u.name, u.display_name)
            for u in m365_directory.cached_users(ctx, org.id)
        ]
    return [
        OrgUser(stable_user_id(org.id, u.name), u.name, u.name)
        for u in catalog.organization_users(ctx, org.id)
    ]


def page_organization_users(
    ctx: Context, org: Organization, offset: int, limit: int, search: str = ""
) -> list[OrgUser]:
    """A window of ``organization_users`` by name (those whose name contains ``search``), an
    Office365 organization's paged in its catalog cache."""
    if org.type == m365_settings.OFFICE365_TYPE:
        return [
            OrgUser(m365_directory.vendor_id(u.graph_id, u.onprem_guid), u.name, u.display_name)
            for u in m365_directory.page_cached_users(ctx, org.id, offset, limit, search)
        ]
    return [
        OrgUser(stable_user_id(org.id, u.name), u.name, u.name)
        for u in catalog.page_organization_users(ctx, org.id, offset, limit, search)
    ]


def _set_operators(s: Session, role_id: str, user_ids: list[str], replace: bool = False) -> None:
    if replace:
        s.execute(delete(RbacOperator).where(RbacOperator.role_id == role_id))
    have = (
        set()
        if replace
        else set(s.scalars(select(RbacOperator.user_id).where(RbacOperator.role_id == role_id)))
    )
    s.add_all(RbacOperator(role_id=role_id, user_id=u) for u in user_ids if u not in have)


def _set_items(
    s: Session, role_id: str, users: list[OrgUser], *, excluded: bool, replace: bool = False
) -> None:
    mine = (RbacItem.role_id == role_id, RbacItem.excluded == excluded)
    if replace:
        s.execute(delete(RbacItem).where(*mine))
    have = set() if replace else set(s.scalars(select(RbacItem.item_id).where(*mine)))
    s.add_all(
        RbacItem(
            role_id=role_id,
            excluded=excluded,
            item_id=u.id,
            name=u.name,
            display_name=u.display_name,
        )
        for u in users
        if u.id not in have
    )


def _audit(s: Session, ctx: Context, role: RbacRole, what: str, by: str, origin: Origin) -> None:
    audit.add(
        s,
        ctx.clock.now(),
        Entry(
            AuditAction.ROLE_CHANGE,
            by,
            origin,
            organization_id=role.organization_id,
            details={"role": role.id, "name": role.name, "change": what},
        ),
    )
