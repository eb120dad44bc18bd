"""Beyond the vendor: ETags, If-Match, and concurrent edits that never lose or half-apply."""

from __future__ import annotations

import threading
from typing import Any

from tests.conftest import Api


def test_every_job_response_carries_an_etag_that_changes_with_edits(
    api: Api, job: dict[str, Any]
) -> None:
    first = api.get(f"/v2/Jobs/{job['id']}").headers["etag"]
    put = api.put(f"/v2/Jobs/{job['id']}", {"description": "changed"})
    assert put.headers["etag"] != first
    assert api.get(f"/v2/Jobs/{job['id']}").headers["etag"] == put.headers["etag"]


def test_a_put_of_what_the_job_holds_keeps_its_etag(api: Api, job: dict[str, Any]) -> None:
    """A client that applies the configuration it keeps, again and again, changes nothing: the
    ETag stays, and an If-Match taken before the PUT still matches after it."""
    first = api.get(f"/v2/Jobs/{job['id']}")
    same = {"name": job["name"], "description": first.json()["description"]}
    for _ in range(2):
        put = api.put(f"/v2/Jobs/{job['id']}", same, headers={"If-Match": first.headers["etag"]})
        assert (put.status_code, put.headers["etag"]) == (200, first.headers["etag"])
    changed = api.put(f"/v2/Jobs/{job['id']}", {"description": "changed"})
    assert changed.headers["etag"] != first.headers["etag"]


def test_if_match_that_still_matches_applies(api: Api, job: dict[str, Any]) -> None:
    etag = api.get(f"/v2/Jobs/{job['id']}").headers["etag"]
    response = api.put(f"/v2/Jobs/{job['id']}", {"name": "renamed"}, headers={"If-Match": etag})
    assert response.status_code == 200


def test_stale_if_match_gets_412_and_changes_nothing(api: Api, job: dict[str, Any]) -> None:
    stale = api.get(f"/v2/Jobs/{job['id']}").headers["etag"]
    api.put(f"/v2/Jobs/{job['id']}", {"description": "first admin"})
    response = api.put(
        f"/v2/Jobs/{job['id']}", {"description": "second admin"}, headers={"If-Match": stale}
    )
    assert response.status_code == 412
    assert "changed by someone else" in response.json()["message"]
    assert api.get(f"/v2/Jobs/{job['id']}").json()["description"] == "first admin"


def test_if_match_star_and_weak_etags(api: Api, job: dict[str, Any]) -> None:
    etag = api.get(f"/v2/Jobs/{job['id']}").headers["etag"]
    assert (
        api.put(
            f"/v2/Jobs/{job['id']}", {"description": "a"}, headers={"If-Match": "*"}
        ).status_code
        == 200
    )
    assert (
        api.put(
            f"/v2/Jobs/{job['id']}", {"description": "b"}, headers={"If-Match": f"W/{etag}"}
        ).status_code
        == 412
    )  # that version is gone
    assert (
        api.put(
            f"/v2/Jobs/{job['id']}", {"description": "c"}, headers={"If-Match": "garbage"}
        ).status_code
        == 412
    )


def test_concurrent_edits_of_different_properties_all_take_effect(
    api: Api, job: dict[str, Any]
) -> None:
    """Sixteen administrators each change a different setting at the same moment."""
    edits = [
        {"description": "d"},
        {"name": "n"},
        {"isEnabled": False},
        {"schedulePolicy": {"retryNumber": 9}},
        {"schedulePolicy": {"retryWaitInterval": 42}},
        {"schedulePolicy": {"backupWindowSettings": {"minuteOffset": 60}}},
        {"schedulePolicy": {"retryEnabled": False}},
        {"schedulePolicy": {"type": "Daily", "dailyType": "Friday"}},
    ]
    version_before = int(api.get(f"/v2/Jobs/{job['id']}").headers["etag"].strip('"'))
    barrier = threading.Barrier(len(edits))
    statuses: list[int] = []

    def edit(body: dict[str, Any]) -> None:
        barrier.wait()
        statuses.append(api.put(f"/v2/Jobs/{job['id']}", body).status_code)

    threads = [threading.Thread(target=edit, args=(body,)) for body in edits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * len(edits)
    final = api.get(f"/v2/Jobs/{job['id']}")
    body, policy = final.json(), final.json()["schedulePolicy"]
    assert (body["description"], body["name"], body["isEnabled"]) == ("d", "n", False)
    assert (policy["retryNumber"], policy["retryWaitInterval"], policy["retryEnabled"]) == (
        9,
        42,
        False,
    )
    assert policy["backupWindowSettings"]["minuteOffset"] == 60
    assert policy["dailyType"] == "Friday"
    assert final.headers["etag"] == f'"{version_before + len(edits)}"'  # each edit, one version


def test_concurrent_if_match_edits_exactly_one_wins(api: Api, job: dict[str, Any]) -> None:
    etag = api.get(f"/v2/Jobs/{job['id']}").headers["etag"]
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def edit(n: int) -> None:
        barrier.wait()
        statuses.append(
            api.put(
                f"/v2/Jobs/{job['id']}", {"description": f"admin {n}"}, headers={"If-Match": etag}
            ).status_code
        )

    threads = [threading.Thread(target=edit, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [412] * 5
