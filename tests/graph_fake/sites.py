"""SharePoint sites of the fake's tenants, as `/sites/getAllSites` lists them: ids in Graph's
composite form `hostname,siteCollectionId,webId`, personal (OneDrive) sites flagged."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Site:
    hostname: str
    path: str  # "/sites/marketing", "/personal/alice_contoso_onmicrosoft_com"
    display_name: str
    is_personal: bool = False
    collection_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    web_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def id(self) -> str:
        return f"{self.hostname},{self.collection_id},{self.web_id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.path.rstrip("/").rsplit("/", 1)[-1],
            "displayName": self.display_name,
            "webUrl": f"https://{self.hostname}{self.path}",
            "isPersonalSite": self.is_personal,
            "createdDateTime": "2026-01-01T00:00:00Z",
            "lastModifiedDateTime": "2026-01-01T00:00:00Z",
            "siteCollection": {"hostname": self.hostname},
        }


SITE_PROPERTIES = frozenset(Site("h", "/", "").to_json())
