"""Groups of the fake's tenants: Microsoft 365 groups (some provisioned as Teams), security and
distribution groups, with their members (users and nested groups) by id."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Group:
    id: str
    display_name: str
    mail_nickname: str
    mail: str | None = None
    description: str | None = None
    group_types: list[str] = field(default_factory=list)
    mail_enabled: bool = False
    security_enabled: bool = True
    resource_provisioning_options: list[str] = field(default_factory=list)
    on_premises_sync_enabled: bool | None = None
    on_premises_sid: str | None = None
    members: list[str] = field(default_factory=list)  # user or group ids, in the order added

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "description": self.description,
            "mail": self.mail,
            "mailNickname": self.mail_nickname,
            "mailEnabled": self.mail_enabled,
            "securityEnabled": self.security_enabled,
            "groupTypes": list(self.group_types),
            "resourceProvisioningOptions": list(self.resource_provisioning_options),
            "onPremisesSyncEnabled": self.on_premises_sync_enabled,
            "onPremisesSecurityIdentifier": self.on_premises_sid,
            "visibility": "Private" if "Unified" in self.group_types else None,
            "createdDateTime": "2026-01-01T00:00:00Z",
        }


GROUP_PROPERTIES = frozenset(Group("", "", "").to_json())
# What `$select` may name on a member (a directoryObject: a user's or a group's properties).
MEMBER_PROPERTIES = frozenset(
    {"id", "displayName", "userPrincipalName", "mail", "onPremisesSyncEnabled", "mailNickname"}
)
