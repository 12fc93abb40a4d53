"""Every response the tests receive is checked against openapi.yaml here, in one place.

Unknown paths have no operation in the contract; their 404 body is asserted by
the tests that send them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound

CONTRACT = Path(__file__).resolve().parents[1] / "openapi.yaml"


@cache
def contract() -> OpenAPI:
    return OpenAPI.from_file_path(str(CONTRACT))


def check_werkzeug_response(response: Any) -> None:
    """Validate a Flask test-client response (its `.request` is the request sent)."""
    from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    sent = response.request
    # The app consumed the request body; the operation is found by method and path alone.
    bodiless = Request(
        EnvironBuilder(
            path=sent.path,
            method=sent.method,
            query_string=sent.query_string.decode("latin-1"),
            base_url=sent.host_url,
        ).get_environ()
    )
    _validate(WerkzeugOpenAPIRequest(bodiless), WerkzeugOpenAPIResponse(response))


def check_requests_response(response: Any) -> None:
    """Validate a `requests` response from a live server (usable as a response hook)."""
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    _validate(RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response))


class ContractViolation(AssertionError):
    """A response that openapi.yaml does not allow."""


def _validate(request: Any, response: Any) -> None:
    try:
        contract().validate_response(request, response)
    except (PathNotFound, OperationNotFound):
        return
    except OpenAPIError as exc:
        details = "; ".join(str(e) for e in getattr(exc.__cause__, "schema_errors", ()) or ())
        raise ContractViolation(
            f"{request.method.upper()} {request.path} -> {response.status_code}: {exc}"
            f"{' (' + details + ')' if details else ''}\nbody: {response.data[:500]!r}"
        ) from exc
