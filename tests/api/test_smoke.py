from typing import Any

from tests.conftest import Api


def test_job_fixture_round_trips(api: Api, job: dict[str, Any]) -> None:
    assert api.get(f"/v2/Jobs/{job['id']}").json() == job
