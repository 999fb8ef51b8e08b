"""schemathesis over the service's own /openapi.json on a real server on loopback (no mocks).

Every operation gets a bounded number of generated requests (schema-valid and, by
schemathesis' defaults, some invalid ones) with a valid token; the checks are no 5xx and
responses (status codes, content types, bodies) that conform to the published schema.
"""

from __future__ import annotations

import time

import jwt
import pytest

pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from mem_adapters.server.process import ServerProcess

pytestmark = pytest.mark.slow

SECRET = "schema-test-secret-" + "s" * 32
MAX_EXAMPLES = 8
"""Generated requests per operation (bounded: the suite runs on two shared cores)."""


def _token() -> str:
    now = int(time.time())
    claims = {"org_id": "schema-org", "sub": "dana", "role": "admin", "iat": now, "exp": now + 3600}
    return jwt.encode(claims, SECRET, "HS256")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    d = tmp_path_factory.mktemp("schema-svc")
    with ServerProcess(["--path", str(d / "store"), "--jwt-secret", SECRET]) as srv:
        yield srv


@pytest.fixture(scope="module")
def api_schema(service):
    return schemathesis.openapi.from_url(service.url + "/openapi.json")


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


def _fuzz(operation, mode: GenerationMode, headers: dict[str, str]) -> int:
    calls = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case) -> None:
        nonlocal calls
        calls += 1
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=120)

    try:
        run()
    except Unsatisfiable:
        # Negative mode on an operation with nothing to break (no body, no constrained
        # parameter): schemathesis cannot make an invalid request; not an API failure.
        assert mode is GenerationMode.NEGATIVE, operation.label
    return calls


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_openapi_no_server_error_and_conforming_responses(api_schema, mode):
    headers = {"Authorization": f"Bearer {_token()}"}
    operations = [r.ok() for r in api_schema.get_all_operations()]
    assert len(operations) >= 20  # the schema is the service's, not an empty one
    failures: list[str] = []
    calls = 0
    for op in operations:
        try:
            calls += _fuzz(op, mode, headers)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # schemathesis' FailureGroup: collect every operation's, fail once
            failures.append(f"{op.label}: {type(e).__name__}: {str(e)[:1500]}")
    assert not failures, "\n\n".join(failures)
    assert calls >= len(operations) if mode is GenerationMode.POSITIVE else calls > 0
