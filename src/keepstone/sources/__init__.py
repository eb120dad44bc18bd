"""Organization connectors: read mailboxes and drives from a source.

No connector exists yet (the Local connector comes with the repository engine), so a run of any
organization fails honestly, with a log item saying why, instead of pretending to succeed.
"""

from __future__ import annotations

from keepstone.store.tables import Organization


def why_unavailable(organization: Organization) -> str:
    return (
        f"No connector for organization type '{organization.type}' is available yet: "
        f"organization '{organization.name}' cannot be backed up"
    )
