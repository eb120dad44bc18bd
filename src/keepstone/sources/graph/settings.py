"""Where Graph and its login service are: server settings, so any Graph-compatible service
(a test's fake, a sovereign cloud) can stand in without the connector knowing."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_GRAPH_URL = "https://graph.microsoft.com"
DEFAULT_LOGIN_URL = "https://login.microsoftonline.com"


class EndpointError(ValueError):
    """A configured endpoint is not an https URL."""


def _https_base(name: str, url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise EndpointError(f"{name} must be an https URL with a host, got {url!r}")
    if parts.query or parts.fragment:
        raise EndpointError(f"{name} must not carry a query or fragment")
    return url.strip().rstrip("/")


@dataclass(frozen=True, slots=True)
class GraphEndpoints:
    graph_url: str = DEFAULT_GRAPH_URL
    login_url: str = DEFAULT_LOGIN_URL

    def __post_init__(self) -> None:
        object.__setattr__(self, "graph_url", _https_base("--graph-url", self.graph_url))
        object.__setattr__(self, "login_url", _https_base("--login-url", self.login_url))

    @classmethod
    def resolve(
        cls,
        graph_url: str | None = None,
        login_url: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> GraphEndpoints:
        """The option, else the environment (``KEEPSTONE_GRAPH_URL``/``KEEPSTONE_LOGIN_URL``),
        else Microsoft's public cloud."""
        env = os.environ if environ is None else environ
        return cls(
            graph_url or env.get("KEEPSTONE_GRAPH_URL") or DEFAULT_GRAPH_URL,
            login_url or env.get("KEEPSTONE_LOGIN_URL") or DEFAULT_LOGIN_URL,
        )

    def authority(self, tenant: str) -> str:
        """The MSAL authority for a tenant (GUID or ``contoso.onmicrosoft.com``)."""
        if not tenant or any(c in tenant for c in "/?#@\\ "):
            raise EndpointError(f"tenant {tenant!r} is not a tenant id or domain")
        return f"{self.login_url}/{tenant}"

    @property
    def scope(self) -> str:
        """The app-only scope: every consented application permission of Graph."""
        return f"{self.graph_url}/.default"
