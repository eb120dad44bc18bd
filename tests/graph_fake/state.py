"""The fake's data: tenants, their registered applications, users; shared with the test thread.

Tests change the state while the server runs in another thread, so every mutation and every read
a handler makes goes through `FakeState.lock`.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from keepstone.clock import Clock, ManualClock
from tests.graph_fake.drive import Drive
from tests.graph_fake.faults import Faults
from tests.graph_fake.groups import Group
from tests.graph_fake.mailbox import Mailbox
from tests.graph_fake.sharepoint import ResourceUnitBook
from tests.graph_fake.sites import Site
from tests.graph_fake.throttle import ThrottleBook

# Application permissions a test app gets unless it says otherwise (graph.md §1.1).
DEFAULT_ROLES = frozenset(
    {
        "User.Read.All",
        "Organization.Read.All",
        "Mail.ReadWrite",
        "MailboxSettings.Read",
        "Files.ReadWrite.All",
        # what a backup application also has to list the organization's groups and sites
        "Group.Read.All",
        "Sites.Read.All",
    }
)
# Resource identifiers whose `/.default` scope the token endpoint accepts; the fake's own Graph
# base URL is added when the server starts, so a client may derive the scope from its setting.
GRAPH_RESOURCE = "https://graph.microsoft.com"


@dataclass
class RegisteredApp:
    client_id: str
    tenant_id: str
    secrets: list[str] = field(default_factory=list)
    certificates: list[x509.Certificate] = field(default_factory=list)
    roles: frozenset[str] = DEFAULT_ROLES


@dataclass
class User:
    id: str
    user_principal_name: str
    display_name: str
    mail: str | None
    user_type: str = "Member"
    account_enabled: bool = True
    office_location: str | None = None
    # directory sync from on-premises AD (tests/graph_fake/directory.py's hybrid users)
    on_premises_sync_enabled: bool | None = None
    on_premises_immutable_id: str | None = None
    on_premises_sid: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The user as Graph's default projection plus the properties a backup asks for."""
        return {
            "id": self.id,
            "userPrincipalName": self.user_principal_name,
            "displayName": self.display_name,
            "mail": self.mail,
            "userType": self.user_type,
            "accountEnabled": self.account_enabled,
            "officeLocation": self.office_location,
            "givenName": None,
            "surname": None,
            "jobTitle": None,
            "mobilePhone": None,
            "businessPhones": [],
            "preferredLanguage": None,
            "assignedLicenses": [],
            "onPremisesSyncEnabled": self.on_premises_sync_enabled,
            "onPremisesImmutableId": self.on_premises_immutable_id,
            "onPremisesSecurityIdentifier": self.on_premises_sid,
        }


# The properties `$select` may name on a user; anything else is refused as Graph does.
USER_PROPERTIES = frozenset(User("", "", "", None).to_json())


@dataclass
class Tenant:
    id: str
    domain: str
    display_name: str
    users: dict[str, User] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)  # tests/graph_fake/groups.py
    sites: list[Site] = field(default_factory=list)  # tests/graph_fake/sites.py

    def find_user(self, key: str) -> User | None:
        """A user by id (exact) or by user principal name (case-insensitive), as Graph allows."""
        lowered = key.lower()
        return next(
            (
                u
                for u in self.users.values()
                if key == u.id or lowered == u.user_principal_name.lower()
            ),
            None,
        )

    def to_organization(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "tenantType": "AAD",
            "verifiedDomains": [
                {
                    "name": self.domain,
                    "type": "Managed",
                    "isDefault": True,
                    "isInitial": True,
                    "capabilities": "Email, OfficeCommunicationsOnline",
                }
            ],
        }


class FakeState:
    """Everything the fake knows; tests build it through these methods."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or ManualClock(datetime(2026, 6, 10, 10, 0, tzinfo=UTC))
        self.lock = threading.RLock()
        self.tenants: dict[str, Tenant] = {}
        self.apps: dict[str, RegisteredApp] = {}
        self.token_key = secrets.token_bytes(32)
        self.graph_resources: set[str] = {GRAPH_RESOURCE}
        self.token_lifetime_seconds = 3599
        self.tokens_issued = 0
        self.mailboxes: dict[str, Mailbox] = {}
        # Delta rounds: round id -> (folder id, generation, the message ids it returns in order).
        self.delta_rounds: dict[str, tuple[str, int, list[str]]] = {}
        # Replays (graph.md §2.5): each delta page after the first repeats the previous page's
        # last item, as Exchange may; a client must merge by id.
        self.delta_replays = False
        self.throttle = ThrottleBook()
        self.drives: dict[str, Drive] = {}
        self.download_url_lifetime_seconds = 3600
        self.faults = Faults()
        # SharePoint/OneDrive resource units per (app, tenant) (tests/graph_fake/sharepoint.py).
        self.resource_units = ResourceUnitBook()

    def add_tenant(self, domain: str, display_name: str = "Contoso") -> Tenant:
        with self.lock:
            tenant = Tenant(str(uuid.uuid4()), domain, display_name)
            self.tenants[tenant.id] = tenant
            return tenant

    def add_app(
        self,
        tenant: Tenant,
        *,
        secret: str | None = None,
        certificate: x509.Certificate | None = None,
        roles: frozenset[str] = DEFAULT_ROLES,
    ) -> RegisteredApp:
        with self.lock:
            app = RegisteredApp(str(uuid.uuid4()), tenant.id, roles=roles)
            if secret is not None:
                app.secrets.append(secret)
            if certificate is not None:
                app.certificates.append(certificate)
            self.apps[app.client_id] = app
            return app

    def add_user(self, tenant: Tenant, name: str, display_name: str | None = None) -> User:
        with self.lock:
            upn = f"{name}@{tenant.domain}"
            user = User(str(uuid.uuid4()), upn, display_name or name, upn)
            tenant.users[user.id] = user
            return user

    def add_mailbox(self, user: User) -> Mailbox:
        with self.lock:
            mailbox = Mailbox(user.id)
            self.mailboxes[user.id] = mailbox
            return mailbox

    def add_drive(self, user: User) -> Drive:
        with self.lock:
            drive = Drive(user.id, self.clock.now())
            self.drives[user.id] = drive
            return drive

    def find_tenant(self, name: str) -> Tenant | None:
        """A tenant by GUID or by its domain name, as the login URL's path segment allows."""
        with self.lock:
            if name in self.tenants:
                return self.tenants[name]
            lowered = name.lower()
            return next((t for t in self.tenants.values() if t.domain.lower() == lowered), None)

    def now_ts(self) -> int:
        return int(self.clock.now().timestamp())
