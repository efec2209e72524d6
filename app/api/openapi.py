"""The OpenAPI document tells the truth about errors: RFC 9457 problem+json (CAMARA's ErrorInfo on the
CAMARA path), and the statuses each kind of route can answer."""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Reference, Schema
from litestar.openapi.spec.enums import OpenAPIType

PROBLEM = Schema(
    type=OpenAPIType.OBJECT, required=["type", "title", "status", "detail", "err"],
    properties={
        "type": Schema(type=OpenAPIType.STRING), "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER), "detail": Schema(type=OpenAPIType.STRING),
        "err": Schema(type=OpenAPIType.STRING, description="RFC 8935 vocabulary: invalid_request, "
                      "authentication_failed, access_denied, invalid_state, not_found, conflict, rate_limited"),
        "field": Schema(type=OpenAPIType.STRING), "errors": Schema(type=OpenAPIType.ARRAY, items=Schema()),
    },
    description="RFC 9457 problem details with an `err` member",
)
CAMARA_ERROR = Schema(
    type=OpenAPIType.OBJECT, required=["status", "code", "message"],
    properties={"status": Schema(type=OpenAPIType.INTEGER), "code": Schema(type=OpenAPIType.STRING),
                "message": Schema(type=OpenAPIType.STRING)},
    description="CAMARA ErrorInfo",
)
DESCRIPTIONS = {400: "Invalid request", 401: "Authentication failed", 403: "Access denied", 404: "Not found",
                409: "Conflict or invalid state", 413: "Request body too large", 415: "Unsupported media type",
                422: "Unprocessable", 429: "Too many requests", 503: "Temporarily unavailable"}
COMMON = (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)


def document_errors(app: Litestar) -> None:
    schema = app.openapi_schema
    schema.components.schemas["Problem"] = PROBLEM
    schema.components.schemas["CamaraErrorInfo"] = CAMARA_ERROR
    for path, item in (schema.paths or {}).items():
        camara = path.startswith("/number-recycling/")
        ref = Reference(ref="#/components/schemas/" + ("CamaraErrorInfo" if camara else "Problem"))
        media = "application/json" if camara else "application/problem+json"
        for method in ("get", "post", "put", "patch", "delete"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            responses = operation.responses if operation.responses is not None else {}
            for status in COMMON:
                responses[str(status)] = OpenAPIResponse(description=DESCRIPTIONS[status],
                                                        content={media: OpenAPIMediaType(schema=ref)})
            operation.responses = responses
