"""Bad input to the job endpoints: a 400 naming the property, and nothing changed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api

WEEK = [True] * 168

INVALID_BODIES: list[tuple[str, Any, str]] = [
    # (case, body, text the message must contain)
    ("dailyType without type", {"schedulePolicy": {"dailyType": "Monday"}}, "schedulePolicy.type"),
    (
        "dailyTime without type",
        {"schedulePolicy": {"dailyTime": "08:00:00"}},
        "schedulePolicy.type",
    ),
    (
        "periodicallyEvery without type",
        {"schedulePolicy": {"periodicallyEvery": "Hours1"}},
        "schedulePolicy.type",
    ),
    (
        "167 booleans",
        {"schedulePolicy": {"backupWindowSettings": {"backupWindow": [True] * 167}}},
        "backupWindow",
    ),
    (
        "169 booleans",
        {"schedulePolicy": {"backupWindowSettings": {"backupWindow": [True] * 169}}},
        "backupWindow",
    ),
    (
        "window of strings",
        {"schedulePolicy": {"backupWindowSettings": {"backupWindow": ["x"] * 168}}},
        "backupWindow",
    ),
    (
        "window not a list",
        {"schedulePolicy": {"backupWindowSettings": {"backupWindow": True}}},
        "backupWindow",
    ),
    (
        "enabled window that allows nothing",
        {
            "schedulePolicy": {
                "backupWindowEnabled": True,
                "backupWindowSettings": {"backupWindow": [False] * 168},
            }
        },
        "backupWindow",
    ),
    ("unknown schedule type", {"schedulePolicy": {"type": "Hourly"}}, "schedulePolicy.type"),
    (
        "unknown daily type",
        {"schedulePolicy": {"type": "Daily", "dailyType": "Funday"}},
        "schedulePolicy.dailyType",
    ),
    (
        "unknown period",
        {"schedulePolicy": {"type": "Periodically", "periodicallyEvery": "Hours3"}},
        "schedulePolicy.periodicallyEvery",
    ),
    ("unknown backup type", {"backupType": "Everything"}, "backupType"),
    ("negative retryNumber", {"schedulePolicy": {"retryNumber": -1}}, "schedulePolicy.retryNumber"),
    (
        "absurd retryNumber",
        {"schedulePolicy": {"retryNumber": 10**9}},
        "schedulePolicy.retryNumber",
    ),
    (
        "fractional retryNumber",
        {"schedulePolicy": {"retryNumber": 2.5}},
        "schedulePolicy.retryNumber",
    ),
    (
        "zero retryWaitInterval",
        {"schedulePolicy": {"retryWaitInterval": 0}},
        "schedulePolicy.retryWaitInterval",
    ),
    (
        "dailyTime 25:00:00",
        {"schedulePolicy": {"type": "Daily", "dailyTime": "25:00:00"}},
        "schedulePolicy.dailyTime",
    ),
    (
        "dailyTime 08:60:00",
        {"schedulePolicy": {"type": "Daily", "dailyTime": "08:60:00"}},
        "schedulePolicy.dailyTime",
    ),
    (
        "dailyTime not a time",
        {"schedulePolicy": {"type": "Daily", "dailyTime": "eight"}},
        "schedulePolicy.dailyTime",
    ),
    (
        "minuteOffset out of range",
        {"schedulePolicy": {"backupWindowSettings": {"minuteOffset": 100000}}},
        "minuteOffset",
    ),
    ("unknown proxyId", {"proxyId": "5a905bb5-9071-433c-9d2f-f805d4da2cf4"}, "proxyId"),
    (
        "unknown repositoryId",
        {"repositoryId": "a740fb93-4de8-4de4-977e-765dd092748f"},
        "repositoryId",
    ),
    ("name as a number", {"name": 5}, "name"),
    ("empty name", {"name": "  "}, "name"),
    ("isEnabled not a boolean", {"isEnabled": "perhaps"}, "isEnabled"),
    ("schedulePolicy not an object", {"schedulePolicy": [1, 2]}, "schedulePolicy"),
    ("SelectedItems without items", {"backupType": "SelectedItems"}, "selectedItems"),
    ("selected item of unknown type", {"selectedItems": [{"type": "Planet"}]}, "selectedItems"),
    ("name with a control character", {"name": "bad\x07name"}, "name"),
    ("name with NUL", {"name": "bad\x00name"}, "name"),
    ("name with a line break", {"name": "two\nlines"}, "name"),
    ("name with a tab", {"name": "tab\tbed"}, "name"),
    ("name with DEL", {"name": "del\x7f"}, "name"),
    ("name with a C1 control", {"name": "c1\x85"}, "name"),
    ("name with U+FFFE", {"name": "not\ufffea character"}, "name"),
    ("name with U+FFFF", {"name": "not\uffffa character"}, "name"),
    ("description with a control character", {"description": "a\x01b"}, "description"),
    ("description with U+FFFF", {"description": "a\uffffb"}, "description"),
    ("body is an array", [1, 2, 3], "request body"),
    ("body is a string", "name", "request body"),
]


@pytest.mark.parametrize(
    ("case", "body", "names"), INVALID_BODIES, ids=[c[0] for c in INVALID_BODIES]
)
def test_invalid_edit_is_refused_and_changes_nothing(
    api: Api, job: dict[str, Any], case: str, body: Any, names: str
) -> None:
    before = api.get(f"/v2/Jobs/{job['id']}")
    response = api.put(f"/v2/Jobs/{job['id']}", body)
    assert response.status_code == 400, (case, response.text)
    assert names in response.json()["message"], (case, response.json())
    after = api.get(f"/v2/Jobs/{job['id']}")
    assert after.json() == before.json()
    assert after.headers["etag"] == before.headers["etag"]


def test_a_valid_property_beside_an_invalid_one_is_not_applied(
    api: Api, job: dict[str, Any]
) -> None:
    response = api.put(
        f"/v2/Jobs/{job['id']}", {"description": "new", "schedulePolicy": {"dailyType": "Monday"}}
    )
    assert response.status_code == 400
    assert api.get(f"/v2/Jobs/{job['id']}").json()["description"] == ""


def test_body_that_is_not_json(api: Api, job: dict[str, Any]) -> None:
    response = api.client.put(
        f"/v2/Jobs/{job['id']}",
        content=b"{name: oops",
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["message"]


def test_empty_body(api: Api, job: dict[str, Any]) -> None:
    response = api.client.put(
        f"/v2/Jobs/{job['id']}",
        content=b"",
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["message"]


def test_body_over_one_mebibyte(api: Api, job: dict[str, Any]) -> None:
    huge = {"description": "x" * (1024 * 1024)}
    response = api.put(f"/v2/Jobs/{job['id']}", huge)
    assert response.status_code == 400
    assert "larger than the limit" in response.json()["message"]
    assert api.get(f"/v2/Jobs/{job['id']}").json()["description"] == ""


def test_chunked_body_over_the_limit(api: Api, job: dict[str, Any]) -> None:
    def chunks() -> Any:
        yield b'{"description": "'
        for _ in range(300):
            yield b"y" * 4096
        yield b'"}'

    response = api.client.put(
        f"/v2/Jobs/{job['id']}",
        content=chunks(),
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert api.get(f"/v2/Jobs/{job['id']}").json()["description"] == ""


def test_unknown_job_is_404(api: Api) -> None:
    response = api.put("/v2/Jobs/00000000-0000-0000-0000-000000000000", {"name": "x"})
    assert response.status_code == 404
    assert "does not exist" in response.json()["message"]
    assert api.get("/v2/Jobs/not-even-a-uuid").status_code == 404


def test_duplicate_job_name_in_one_organization(
    api: Api, job: dict[str, Any], org: dict[str, Any], repo: dict[str, Any]
) -> None:
    other = api.post(
        f"/v2/Organizations/{org['id']}/Jobs", {"name": "other", "repositoryId": repo["id"]}
    ).json()
    response = api.put(f"/v2/Jobs/{other['id']}", {"name": "TEST_JOB"})
    assert response.status_code == 400 and "name" in response.json()["message"]


def test_read_only_properties_are_ignored(api: Api, job: dict[str, Any]) -> None:
    body = {
        "id": "e1714f5b-e51b-496b-9e46-e7bf979aa6d6",
        "lastRun": "2017-06-06T15:18:22.6664413Z",
        "nextRun": "2017-06-13T15:00:00Z",
        "lastStatus": "Success",
        "_links": {},
    }
    before = api.get(f"/v2/Jobs/{job['id']}").json()
    assert api.put(f"/v2/Jobs/{job['id']}", body).status_code == 200
    assert api.get(f"/v2/Jobs/{job['id']}").json() == before


@pytest.mark.parametrize("escaped", ["\\ud800", "x\\udfffy", "\\udc00\\ud800"])
@pytest.mark.parametrize("prop", ["name", "description"])
def test_lone_surrogates_are_refused_naming_the_property(
    api: Api, job: dict[str, Any], escaped: str, prop: str
) -> None:
    before = api.get(f"/v2/Jobs/{job['id']}").json()
    response = api.client.put(
        f"/v2/Jobs/{job['id']}",
        content=f'{{"{prop}": "{escaped}"}}'.encode(),
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert prop in response.json()["message"]
    assert api.get(f"/v2/Jobs/{job['id']}").json() == before


def test_a_new_job_with_a_control_character_in_its_name_is_refused(
    api: Api, org: dict[str, Any], repo: dict[str, Any]
) -> None:
    response = api.post(
        f"/v2/Organizations/{org['id']}/Jobs",
        {"name": "nightly\x1b[2J", "repositoryId": repo["id"]},
    )
    assert response.status_code == 400 and "name" in response.json()["message"]
    assert "U+001B" in response.json()["message"]
    assert api.get(f"/v2/Organizations/{org['id']}/Jobs").json() == []


def test_line_breaks_and_tabs_are_kept_in_descriptions(api: Api, job: dict[str, Any]) -> None:
    text = "first line\r\n\tsecond line"
    assert api.put(f"/v2/Jobs/{job['id']}", {"description": text}).status_code == 200
    assert api.get(f"/v2/Jobs/{job['id']}").json()["description"] == text
