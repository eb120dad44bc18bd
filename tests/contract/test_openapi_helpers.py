"""The validator itself: it must be able to fail, or the contract tests prove nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI

from tests.contract.openapi import implemented_operations, load_spec, spec

JOB_ID = "3ceddb94-d613-4e58-914f-f331da3cd403"
JOB_PATH = f"/v8/Jobs/{JOB_ID}"
JSON = "application/json; charset=utf-8"


def valid_job(**changes: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "id": JOB_ID,
        "organizationId": "9f1c7c2e-8d6a-4a57-9b0e-2f1f3f7c1a10",
        "repositoryId": "0b3a1f0e-5c1d-4e2b-8f6a-7d9e1c2b3a4f",
        "name": "Daily mail",
        "description": "",
        "backupType": "EntireOrganization",
        "schedulePolicy": {"type": "Daily", "dailyType": "Everyday", "dailyTime": "15:00:00"},
        "lastRun": "2026-06-10T10:00:00.1234567Z",
        "nextRun": None,
        "isEnabled": True,
        "lastStatus": "Success",
        "eTag": 3,
        "_links": {"self": {"href": f"https://backup.example.test:4443{JOB_PATH.lower()}"}},
    }
    return job | changes


def check_job(body: Any, status: int = 200, path: str = JOB_PATH) -> None:
    spec(8).check_response("GET", path, status, JSON, json.dumps(body).encode())


def test_a_valid_job_passes() -> None:
    check_job(valid_job())
    check_job(valid_job(lastRun="2026-06-10T12:00:00+02:00"))


@pytest.mark.parametrize(
    ("changes", "pointer", "complaint"),
    [
        ({"id": "42"}, "/id", "is not a 'uuid'"),
        ({"id": "{3ceddb94-d613-4e58-914f-f331da3cd403}"}, "/id", "is not a 'uuid'"),
        ({"repositoryId": "3ceddb94d6134e58914ff331da3cd403"}, "/repositoryId", "'uuid'"),
        ({"lastRun": "6/10/2026 10:00:00 AM"}, "/lastRun", "is not a 'date-time'"),
        ({"lastRun": "2026-06-10T10:00:00"}, "/lastRun", "is not a 'date-time'"),  # no offset
        ({"lastRun": "2026-02-30T10:00:00Z"}, "/lastRun", "is not a 'date-time'"),
        ({"eTag": 2**63}, "/eTag", "is not a 'int64'"),
        ({"eTag": "3"}, "/eTag", "is not of type 'integer'"),
        ({"name": None}, "/name", "None is not of type 'string'"),
        ({"lastStatus": "Done"}, "/lastStatus", "is not one of"),
        ({"schedulePolicy": None}, "/schedulePolicy", "is not of type 'object'"),
    ],
)
def test_a_job_that_breaks_the_schema_fails_naming_where(
    changes: dict[str, Any], pointer: str, complaint: str
) -> None:
    with pytest.raises(AssertionError) as failure:
        check_job(valid_job(**changes))
    message = str(failure.value)
    assert message.startswith("GET /v8/Jobs/{jobId} -> 200: ")
    assert f"instance at {pointer}: " in message
    assert complaint in message
    assert "body: {" in message  # an excerpt of what the server sent


def test_null_is_allowed_exactly_where_the_spec_says_nullable() -> None:
    # lastRun and id are nullable; an enum that is nullable admits null too.
    check_job(valid_job(lastRun=None, id=None, backupType=None, lastStatus=None))
    with pytest.raises(AssertionError, match="instance at /description: None is not of type"):
        check_job(valid_job(description=None))


def test_int32_is_range_checked() -> None:
    path = "/v8/Proxies/3ceddb94-d613-4e58-914f-f331da3cd403"
    proxy = {"id": JOB_ID, "hostName": "localhost", "port": 9193, "status": "Online"}
    spec(8).check_response("GET", path, 200, JSON, json.dumps(proxy).encode())
    with pytest.raises(AssertionError, match="is not a 'int32'"):
        spec(8).check_response("GET", path, 200, JSON, json.dumps(proxy | {"port": 2**31}).encode())


def test_a_status_the_operation_does_not_declare_fails() -> None:
    with pytest.raises(AssertionError, match="status 201 is not declared"):
        check_job(valid_job(), status=201)
    # POST /v8/Jobs declares 201; its 200 is not declared although "default" exists.
    with pytest.raises(AssertionError, match="status 200 is not declared"):
        spec(8).check_response("POST", "/v8/Jobs", 200, JSON, json.dumps(valid_job()).encode())
    with pytest.raises(AssertionError, match="status 302 is not declared"):
        check_job(valid_job(), status=302)


def test_errors_fall_back_to_default_and_need_a_message() -> None:
    check_job({"message": "job 'x' does not exist"}, status=404)
    check_job({"message": "no", "errorCode": "ResourceNotFound", "stackTrace": None}, status=404)
    bodies: list[Any] = [{}, {"message": ""}, {"Message": "wrong case"}, {"message": 42}, []]
    for body in bodies:
        with pytest.raises(AssertionError):
            check_job(body, status=400)
    with pytest.raises(AssertionError, match="errorCode"):
        check_job({"message": "no", "errorCode": "Nope"}, status=409)
    with pytest.raises(AssertionError, match="not JSON"):
        spec(8).check_response("GET", JOB_PATH, 500, JSON, b"Internal Server Error")


def test_no_declared_content_means_an_empty_body() -> None:
    path = f"/v8/Jobs/{JOB_ID}/stop"  # v8 declares 204 without content
    spec(8).check_response("POST", path, 204, "", b"")
    with pytest.raises(AssertionError, match="declares no content"):
        spec(8).check_response("POST", path, 204, JSON, b'{"ok": true}')


def test_declared_json_needs_a_json_body() -> None:
    with pytest.raises(AssertionError, match="body is empty"):
        spec(8).check_response("GET", JOB_PATH, 200, JSON, b"")
    with pytest.raises(AssertionError, match="declares application/json"):
        spec(8).check_response("GET", JOB_PATH, 200, "text/html", b"{}")


def test_downloads_are_checked_for_their_status_only() -> None:
    save = f"/v8/RestoreSessions/{JOB_ID}/organization/mailboxes/{JOB_ID}/items/{JOB_ID}/save"
    spec(8).check_response("POST", save, 200, "message/rfc822", b"Subject: hi\r\n\r\nbody")
    with pytest.raises(AssertionError, match="not declared"):
        spec(8).check_response("POST", save, 201, "message/rfc822", b"Subject: hi\r\n\r\nbody")


def test_templates_match_case_insensitively_and_prefer_literal_segments() -> None:
    v8 = spec(8)
    assert v8.match("GET", "/v8/jobs/abc?offset=0") == "/v8/Jobs/{jobId}"
    assert v8.match("GET", "/V8/JOBS/abc/") == "/v8/Jobs/{jobId}"
    # The vendor's own spec spells these two collections in different cases.
    assert (
        v8.match("GET", "/v8/restoresessions/s/Organization/Mailboxes")
        == "/v8/RestoreSessions/{restoreSessionId}/organization/mailboxes"
    )
    assert (
        v8.match("GET", "/v8/RestoreSessions/s/organization/onedrives")
        == "/v8/RestoreSessions/{restoreSessionId}/Organization/OneDrives"
    )
    # ".../OneDrives/search" is both a literal template (POST) and ".../OneDrives/{oneDriveId}".
    base = "/v8/RestoreSessions/{restoreSessionId}/Organization/OneDrives"
    assert v8.match("POST", "/v8/restoresessions/s/organization/onedrives/search") == (
        f"{base}/search"
    )
    assert v8.match("GET", "/v8/restoresessions/s/organization/onedrives/search") == (
        f"{base}/{{oneDriveId}}"
    )
    assert v8.match("GET", "/v8/Jobs") == "/v8/Jobs"
    assert v8.match("GET", "/v8/NoSuchThing") is None
    assert v8.match("GET", "/v6/Jobs") is None
    assert v8.match("GET", "/v8/Jobs//start") is None  # a parameter is never empty


def test_operations_are_method_and_template() -> None:
    operations = spec(8).operations()
    assert ("GET", "/v8/Jobs/{jobId}") in operations
    assert ("POST", "/v8/token") in operations
    assert len(operations) == sum(
        1
        for item in load_spec(8)["paths"].values()
        for method in ("get", "post", "put", "patch", "delete")
        if method in item
    )


def test_implemented_operations_intersects_routes_with_the_spec() -> None:
    def handler() -> None:
        return None

    router = APIRouter()
    router.add_api_route("/jobs/{job_id}", handler, methods=["GET", "PUT"])
    router.add_api_route("/RESTORESESSIONS/{s}/Organization/{collection}", handler)  # not a match
    router.add_api_route("/Jobs/{job_id}/Action", handler, methods=["POST"])  # not in the spec
    app = FastAPI()
    app.include_router(router, prefix="/v8")
    app.include_router(router, prefix="/v2")
    assert implemented_operations(app, 8) == {
        ("GET", "/v8/Jobs/{jobId}"),
        ("PUT", "/v8/Jobs/{jobId}"),
    }
    assert implemented_operations(app, 6) == set()
