"""What every part of the Microsoft 365 connector is given: an organization's Graph access
(endpoints and application credentials) and its users as the directory named them.

The organization service (``services.m365_settings``) builds these from the catalog and the
vault; the backup connector, the restore target and the directory sync only use them, so none of
them reads the catalog or knows where a secret is kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from keepstone.sources.graph.auth import AppCredentials, MsalHttpClient, TokenSource
from keepstone.sources.graph.client import GraphClient, shared_throttling
from keepstone.sources.graph.settings import GraphEndpoints
from keepstone.sources.graph.tls import graph_tls_context


@dataclass(frozen=True, slots=True)
class GraphAccess:
    """One organization's way into Graph."""

    endpoints: GraphEndpoints
    credentials: AppCredentials

    @contextmanager
    def client(self) -> Iterator[GraphClient]:
        """A client with its own token source over one TLS context; both closed on exit."""
        tls = graph_tls_context()
        http = MsalHttpClient(tls)
        try:  # MSAL reads the authority's metadata at once: a refusal must not leak the socket
            tokens = TokenSource(self.endpoints, self.credentials, http)
        except BaseException:
            http.close()
            raise
        # one discipline for every client of this application: a sync and a backup share it
        throttling = shared_throttling(
            self.endpoints.graph_url, self.credentials.tenant, self.credentials.client_id
        )
        client = GraphClient(self.endpoints, tokens, tls=tls, throttling=throttling)
        try:
            yield client
        finally:
            client.close()
            tokens.close()


@dataclass(frozen=True, slots=True)
class GraphUser:
    """A user of the organization as a backup or restore needs it.

    ``name`` is the user's key in Keepstone (items, jobs, restore sessions): the user principal
    name, lower-cased. ``graph_id`` is the Entra object id every Graph URL uses. ``kind`` is the
    vendor's ``User``/``Shared``/``Public``.
    """

    name: str
    graph_id: str
    display_name: str = ""
    kind: str = "User"
    has_mailbox: bool = True
    has_archive: bool = False
    has_onedrive: bool = True
