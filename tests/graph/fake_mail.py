"""A tenant with one mailbox for the fake's mail tests: messages, delta rounds, requests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.graph.fake_client import bearer
from tests.graph_fake.mailbox import Mailbox
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.state import User

SECRET = "s3cret"
SELECT = "id,parentFolderId,lastModifiedDateTime,isRead,internetMessageId"


def mime_of(n: int) -> bytes:
    return (
        f"From: a@example.com\r\nTo: b@example.com\r\nSubject: message {n}\r\n"
        f"Message-ID: <m{n}@example.com>\r\nDate: Wed, 10 Jun 2026 10:00:00 +0000\r\n\r\n"
        f"body {n}\r\n"
    ).encode()


class Mail:
    """A tenant with one mailbox, an app's token, and URL helpers."""

    def __init__(self, fake: FakeGraph, http: httpx.Client) -> None:
        state = fake.state
        tenant = state.add_tenant("contoso.onmicrosoft.com")
        self.user: User = state.add_user(tenant, "adele")
        self.mailbox: Mailbox = state.add_mailbox(self.user)
        self.fake, self.http = fake, http
        self.headers = bearer(http, fake, state.add_app(tenant, secret=SECRET), SECRET)
        self.base = f"{fake.graph_url}/v1.0/users/{self.user.id}"

    def get(self, url: str, **headers: str) -> httpx.Response:
        return self.http.get(url, headers=self.headers | headers)

    def add(self, folder_key: str, count: int) -> list[str]:
        folder = self.mailbox.folder(folder_key)
        assert folder is not None
        now = self.fake.state.clock.now()
        with self.fake.state.lock:
            return [self.mailbox.add_message(folder, mime_of(n), now).id for n in range(count)]

    def delta_round(self, url: str, page_size: int = 10) -> tuple[list[dict[str, Any]], str, int]:
        """All entries of one round, its delta link and the number of requests it took."""
        entries: list[dict[str, Any]] = []
        requests = 0
        while True:
            answer = self.get(url, Prefer=f"odata.maxpagesize={page_size}")
            requests += 1
            assert answer.status_code == 200, answer.text
            body = answer.json()
            entries += body["value"]
            if "@odata.deltaLink" in body:
                return entries, body["@odata.deltaLink"], requests
            url = body["@odata.nextLink"]
