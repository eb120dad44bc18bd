"""Hostile input is the client's 400 (or 404/412), naming what was wrong and changing nothing;
never a 500. Each case was a 500 before ``api.inputs`` and the checks in ``bodies``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api

JSON = {"content-type": "application/json"}
DEEP = "[" * 100_000 + "]" * 100_000


def send(api: Api, method: str, path: str, raw: str | bytes, content_type: str) -> Any:
    headers = api._headers({"content-type": content_type})
    return api.client.request(method, path, content=raw, headers=headers)


def ids(api: Api, path: str) -> list[str]:
    return [row["id"] for row in api.get(path).json()]


def assert_refused(response: Any, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    message = response.json()["message"]
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("version", [2, 8])
def test_deeply_nested_json_on_token_is_a_400(api: Api, version: int) -> None:
    for body in (DEEP, '{"username": ' + DEEP + "}", '{"a":' * 70 + "1" + "}" * 70):
        response = send(api, "POST", f"/v{version}/Token", body, "application/json")
        assert_refused(response, 400, "nested deeper than 64 levels")
    form_typed = send(api, "POST", "/v2/Token", "{" + DEEP, "application/x-www-form-urlencoded")
    assert form_typed.status_code == 400, form_typed.text


def test_deeply_nested_json_on_any_route_is_a_400(api: Api, job: dict[str, Any]) -> None:
    response = send(api, "PUT", f"/v2/Jobs/{job['id']}", '{"name":' + DEEP + "}", "")
    assert_refused(response, 400, "nested deeper than 64 levels")
    nested = '{"schedulePolicy":' + '{"a":' * 80 + "1" + "}" * 81
    assert_refused(send(api, "PUT", f"/v2/Jobs/{job['id']}", nested, "application/json"), 400)
    assert api.get(f"/v2/Jobs/{job['id']}").json()["name"] == "test_job"


@pytest.mark.parametrize(
    ("path_of", "body", "prop"),
    [
        (lambda ids: f"/v2/Jobs/{ids['job']}", '{"name": "x\\udc80"}', "name"),
        (lambda ids: "/v2/Organizations", '{"type": "Local", "name": "\\ud800"}', "name"),
        (lambda ids: "/v8/BackupRepositories", '{"name": "r", "path": "/tmp/\\udfff"}', "path"),
        (
            lambda ids: f"/v2/Jobs/{ids['job']}",
            '{"selectedItems": [{"type": "User", "user": {"name": "\\udc80"}}]}',
            "selectedItems[0].user.name",
        ),
        (lambda ids: f"/v2/Jobs/{ids['job']}", '{"\\udc80": 1}', "\\udc80"),
    ],
)
def test_lone_surrogates_in_json_are_refused_naming_the_property(
    api: Api, job: dict[str, Any], path_of: Any, body: str, prop: str
) -> None:
    method = "PUT" if "/Jobs/" in path_of({"job": job["id"]}) else "POST"
    before = ids(api, "/v2/Organizations"), ids(api, "/v2/BackupRepositories")
    response = send(api, method, path_of({"job": job["id"]}), body, "application/json")
    assert_refused(response, 400, prop, "lone surrogate")
    assert (ids(api, "/v2/Organizations"), ids(api, "/v2/BackupRepositories")) == before
    assert api.get(f"/v2/Jobs/{job['id']}").json()["name"] == "test_job"


def test_invalid_utf8_in_form_fields_and_query_parameters_is_refused(api: Api) -> None:
    form = "grant_type=password&username=%ED%B2%80&password=x"
    response = send(api, "POST", "/v2/Token", form, "application/x-www-form-urlencoded")
    assert_refused(response, 400, "username", "UTF-8")
    raw = send(api, "POST", "/v2/Token", b"username=caf\xe9", "application/x-www-form-urlencoded")
    assert_refused(raw, 400, "username", "UTF-8")
    assert_refused(api.get("/v2/Jobs?organizationId=%ED%B2%80"), 400, "organizationId", "UTF-8")
    assert_refused(api.get("/v8/Jobs/%ED%B2%80"), 400, "path", "UTF-8")
    body = b'{"name": "caf\xe9"}'
    assert send(api, "POST", "/v2/Organizations", body, "application/json").status_code == 400
    utf16 = '{"type": "Local", "name": "\\udc80"}'.encode("utf-16")  # no content type
    assert_refused(send(api, "POST", "/v2/Organizations", utf16, ""), 400, "name", "surrogate")


def test_nul_in_a_path_like_property_is_refused(
    api: Api, tmp_path: Path, job: dict[str, Any]
) -> None:
    repository = {"name": "nul", "path": str(tmp_path / "a\0b")}
    assert_refused(api.post("/v2/BackupRepositories", repository), 400, "path", "NUL")
    organization = {"type": "Local", "name": "n", "localSettings": {"path": f"{tmp_path}\0"}}
    assert_refused(api.post("/v2/Organizations", organization), 400, "localSettings.path", "NUL")
    assert not list(tmp_path.glob("a*"))


@pytest.mark.parametrize(
    "value",
    [
        "0000-01-01T00:00:00",
        "10000-01-01T00:00:00",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+01:00",
        "100000000000000000000",
        10**20,
        1e308,
        -(10**19),
    ],
)
def test_explore_date_time_out_of_range_is_a_400(api: Api, job: dict[str, Any], value: Any) -> None:
    direct = api.post(f"/v6/Jobs/{job['id']}/explore", {"dateTime": value})
    assert_refused(direct, 400, "dateTime")
    action = api.post(f"/v2/Jobs/{job['id']}/Action", {"explore": {"dateTime": value}})
    assert_refused(action, 400, "dateTime")


@pytest.mark.parametrize("value", [5, "x", [], [1], True, 1.5])
def test_a_malformed_explore_value_is_a_400(api: Api, job: dict[str, Any], value: Any) -> None:
    response = api.post(f"/v2/Jobs/{job['id']}/Action", {"explore": value})
    assert_refused(response, 400, "explore", "must be a JSON object or null")


@pytest.mark.parametrize(
    "if_match",
    ['"' + "9" * 5000 + '"', "9" * 5000, '"99999999999999999999999"', '"٣"', '"-1"', '""'],
)
def test_a_malformed_if_match_is_a_412_naming_it(
    api: Api, job: dict[str, Any], if_match: str
) -> None:
    headers = {"If-Match": if_match.encode()}  # non-ASCII bytes as a client may send them
    response = api.put(f"/v2/Jobs/{job['id']}", {"name": "changed"}, headers=headers)
    assert_refused(response, 412, "If-Match")
    assert len(response.text) < 500
    assert api.get(f"/v2/Jobs/{job['id']}").json()["name"] == "test_job"


@pytest.mark.parametrize(
    "task_id",
    ["99999999999999999999999", "task-99999999999999999999999", "task-9223372036854775808"],
)
def test_task_ids_beyond_64_bits_are_not_found(api: Api, task_id: str) -> None:
    for version in (2, 8):
        assert_refused(api.get(f"/v{version}/Tasks/{task_id}"), 404, "does not exist")


def test_task_ids_that_are_not_ascii_digits_are_a_400(api: Api) -> None:
    for task_id in ("task-³", "task-٣", "task-1e3", "-1"):
        assert_refused(api.get(f"/v8/Tasks/{task_id}"), 400, "taskId")


@pytest.mark.parametrize(
    ("body", "prop"),
    [
        ('{"threadsNumber": 100000000000000000000}', "threadsNumber"),
        ('{"threadsNumber": "100000000000000000000"}', "threadsNumber"),
        ('{"threadsNumber": NaN}', "threadsNumber"),
        ('{"threadsNumber": 1e999}', "threadsNumber"),
        ('{"threadsNumber": -Infinity}', "threadsNumber"),
    ],
)
def test_numbers_beyond_64_bits_or_not_finite_are_refused(api: Api, body: str, prop: str) -> None:
    proxy = api.get("/v2/Proxies").json()[0]
    response = send(api, "PUT", f"/v2/Proxies/{proxy['id']}", body, "application/json")
    assert_refused(response, 400, prop)
    assert api.get("/v2/Proxies").json()[0] == proxy
