"""OneDrive restore against the strict fake: an upload session that expires under the upload is
replaced and the file sent again whole (a bounded number of times), and a write whose answer is
lost (the fake writes, then drops the connection) never leaves a second copy, whatever the
collision policy."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import BinaryIO

import pytest

from keepstone.engine import Item
from keepstone.sources.graph.access import GraphUser
from keepstone.sources.graph.drive_restore import SESSIONS, put_back_files
from keepstone.sources.graph.errors import GraphError
from keepstone.sources.targets import Collision, Placement
from tests.graph.drive_fixtures import Tenancy, server, tenancy
from tests.graph.test_drive_restore import UNIT, by_path, graph_item, put, small_fragments
from tests.graph_fake.drive import Drive
from tests.graph_fake.faults import FaultRule
from tests.graph_fake.uploads import uploads

__all__ = ["server", "small_fragments", "tenancy"]

LIFETIME = 600  # seconds an upload session lives in these tests


class Expiring(io.BytesIO):
    """A backup's content whose reading, after the first fragment, moves the fake's clock past
    the session's life (``times`` times in all): the upload is slow, the session expires."""

    def __init__(self, content: bytes, tenancy: Tenancy, times: list[int]) -> None:
        super().__init__(content)
        self.tenancy, self.times = tenancy, times

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() > 0 and self.times[0] > 0:
            self.times[0] -= 1
            self.tenancy.advance(LIFETIME + 1)
        return super().read(size)


def _expiring(tenancy: Tenancy, content: bytes, times: int) -> Callable[[Item], BinaryIO]:
    left = [times]
    return lambda item: Expiring(content, tenancy, left)


def _upload_calls(tenancy: Tenancy, method: str) -> int:
    assert tenancy.transport is not None
    return sum(
        1 for m, p, _ in tenancy.transport.headers if m == method and p.startswith("/_upload/")
    )


def _short_lived(tenancy: Tenancy) -> tuple[GraphUser, Drive]:
    """A user with a drive whose upload sessions live ``LIFETIME`` seconds."""
    user, drive = tenancy.add_user("adele")
    assert drive is not None
    uploads(tenancy.fake.state).session_lifetime_seconds = LIFETIME
    return user, drive


def test_an_expired_session_is_replaced_and_the_file_sent_again_whole(
    tenancy: Tenancy,
) -> None:
    user, drive = _short_lived(tenancy)
    content = bytes(range(256)) * (5 * UNIT // 256) + b"end"
    item = graph_item(user.name, "big.bin", content)
    where = Placement(user.name, None, Collision.SKIP)
    with tenancy.client() as client:
        reader = _expiring(tenancy, content, 1)
        outcomes = list(put_back_files(client, user, [item], reader, where))
    assert [(o.restored, o.error) for o in outcomes] == [(True, None)]
    assert by_path(drive) == {"big.bin": content}
    assert tenancy.transport is not None
    assert tenancy.transport.counts["POST graph"] == 2  # two sessions: the first expired
    fragments = -(-len(content) // (2 * UNIT))
    assert _upload_calls(tenancy, "PUT") == 1 + 1 + fragments  # sent, refused (404), all again
    assert uploads(tenancy.fake.state).sessions == {}


def test_a_file_whose_sessions_keep_expiring_fails_and_writes_nothing(tenancy: Tenancy) -> None:
    user, drive = _short_lived(tenancy)
    content = b"x" * (4 * UNIT)
    item = graph_item(user.name, "slow.bin", content)
    with tenancy.client() as client:
        reader = _expiring(tenancy, content, SESSIONS)
        where = Placement(user.name, None, Collision.OVERWRITE)
        outcomes = list(put_back_files(client, user, [item], reader, where))
    assert outcomes[0].error is not None and "expired" in outcomes[0].why
    assert by_path(drive) == {}
    assert tenancy.transport is not None
    assert tenancy.transport.counts["POST graph"] == SESSIONS


def _lose(tenancy: Tenancy, pattern: str, every: int = 1) -> FaultRule:
    return tenancy.fake.state.faults.add(FaultRule(pattern, "lose", every=every, limit=1))


@pytest.mark.parametrize("collision", list(Collision))
@pytest.mark.parametrize("large", [False, True])
def test_a_lost_answer_never_makes_a_second_copy(
    tenancy: Tenancy, collision: Collision, large: bool
) -> None:
    user, drive = tenancy.add_user("adele")
    assert drive is not None
    content = (b"L" if large else b"s") * (4 * UNIT + 7 if large else 900)
    item = graph_item(user.name, "Docs/plan.bin", content)
    fragments = -(-len(content) // (2 * UNIT))
    # the simple PUT, or the session's last fragment (which commits the file), is lost
    rule = _lose(tenancy, r"/_upload/", fragments) if large else _lose(tenancy, r":/content$")
    outcomes = put(
        tenancy, user, [item], {item.key: content}, Placement(user.name, None, collision)
    )
    assert rule.fired == 1
    assert [(o.restored, o.error) for o in outcomes] == [(True, None)]
    assert by_path(drive) == {"Docs/plan.bin": content}  # one copy, whole


def test_keep_both_with_the_name_taken_fails_on_a_lost_answer_rather_than_guess(
    tenancy: Tenancy,
) -> None:
    user, drive = tenancy.add_user("adele")
    assert drive is not None
    with tenancy.fake.state.lock:
        drive.add("plan.txt", tenancy.now(), b"theirs")
    item = graph_item(user.name, "plan.txt", b"ours")
    _lose(tenancy, r":/content$", every=2)  # the first PUT (fail) is refused, the rename lost
    outcomes = put(
        tenancy, user, [item], {item.key: b"ours"}, Placement(user.name, None, Collision.KEEP_BOTH)
    )
    assert outcomes[0].error is not None and "may have been written" in outcomes[0].why
    files = by_path(drive)
    assert files["plan.txt"] == b"theirs" and list(files.values()).count(b"ours") <= 1


def test_the_lose_rule_really_writes_before_the_connection_drops(tenancy: Tenancy) -> None:
    """Without the check, a plain replay of a lost rename would write two copies: the rule the
    tests above rely on does write first."""
    _, drive = tenancy.add_user("adele")
    assert drive is not None
    _lose(tenancy, r":/content$")
    with tenancy.client() as client:
        url = f"/v1.0/drives/{drive.id}/items/root:/a.txt:/content"
        query = "?@microsoft.graph.conflictBehavior=rename"
        client.request("PUT", url + query, scope="drive", content=b"a")  # replayed by default
    assert sorted(by_path(drive)) == ["a 1.txt", "a.txt"]


def test_the_fake_extends_a_session_with_each_fragment_and_expires_it_after_idling(
    tenancy: Tenancy,
) -> None:
    _, drive = _short_lived(tenancy)
    total = 3 * UNIT
    with tenancy.client() as client:
        made = client.request(
            "POST",
            f"/v1.0/drives/{drive.id}/items/root:/s.bin:/createUploadSession",
            scope="drive",
            headers={"Content-Type": "application/json"},
            content=b"{}",
        ).json()
        url = made["uploadUrl"]
        for start in (0, UNIT):
            tenancy.advance(LIFETIME - 1)  # never idle for a whole lifetime: still there
            answer = client.request(
                "PUT",
                url,
                scope="drive",
                headers={"Content-Range": f"bytes {start}-{start + UNIT - 1}/{total}"},
                content=b"x" * UNIT,
            )
            assert answer.status_code == 202
            assert answer.json()["expirationDateTime"] > made["expirationDateTime"]
        tenancy.advance(LIFETIME + 1)
        with pytest.raises(GraphError) as gone:
            client.get_json(url, scope="drive")
    assert gone.value.status == 404
    assert by_path(drive) == {}
