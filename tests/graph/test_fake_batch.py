"""`$batch` in the fake: at most 20, unique ids, dependsOn and 424, inner requests throttled."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from tests.graph.fake_client import graph_code
from tests.graph.fake_mail import Mail, mime_of
from tests.graph_fake.throttle import Limits


def _batch(mail: Mail, requests: list[dict[str, Any]]) -> Any:
    url = f"{mail.fake.graph_url}/v1.0/$batch"
    return mail.http.post(url, json={"requests": requests}, headers=mail.headers)


def test_batch_runs_inner_requests_and_returns_mime_base64(mail: Mail) -> None:
    ids = mail.add("inbox", 3)
    path = f"users/{mail.user.id}/messages"
    inner = [
        {"id": str(n), "method": "GET", "url": f"{path}/{i}/$value"} for n, i in enumerate(ids)
    ]
    answer = _batch(mail, inner)
    assert answer.status_code == 200
    by_id = {r["id"]: r for r in answer.json()["responses"]}
    assert set(by_id) == {"0", "1", "2"}
    assert all(base64.b64decode(by_id[str(n)]["body"]) == mime_of(n) for n in range(3))


def test_batch_limits_and_dependencies(mail: Mail) -> None:
    url = f"users/{mail.user.id}/mailFolders"
    many = [{"id": str(n), "method": "GET", "url": url} for n in range(21)]
    assert graph_code(_batch(mail, many)) == (400, "BadRequest")
    twice = [{"id": "a", "method": "GET", "url": url}] * 2
    assert graph_code(_batch(mail, twice)) == (400, "BadRequest")
    chain: list[dict[str, Any]] = [
        {"id": "1", "method": "GET", "url": f"users/{mail.user.id}/messages/AAMkAGnone"},
        {"id": "2", "method": "GET", "url": url, "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": url},
    ]
    by_id = {r["id"]: r for r in _batch(mail, chain).json()["responses"]}
    assert [by_id[k]["status"] for k in ("1", "2", "3")] == [404, 424, 200]
    backwards = [{**chain[1], "dependsOn": ["3"]}, chain[2]]
    assert graph_code(_batch(mail, backwards)) == (400, "BadRequest")


def test_inner_requests_count_and_are_throttled_alone(mail: Mail) -> None:
    mail.fake.state.throttle.limits = Limits(requests=5, window=timedelta(minutes=10))
    url = f"users/{mail.user.id}/mailFolders"
    answers = _batch(mail, [{"id": str(n), "method": "GET", "url": url} for n in range(8)])
    statuses = sorted(r["status"] for r in answers.json()["responses"])
    assert statuses == [200] * 5 + [429] * 3
    throttled = [r for r in answers.json()["responses"] if r["status"] == 429]
    assert all(r["headers"]["retry-after"] for r in throttled)
