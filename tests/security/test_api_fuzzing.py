"""Schemathesis against /schema: every operation of the JSON API, generated requests, no 5xx, and every
documented response matches its schema."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from app.asgi import create_app

APP = create_app()
schema = schemathesis.openapi.from_dict(APP.openapi_schema.to_schema())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api(case, db):
    response = case.call(app=APP)
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
