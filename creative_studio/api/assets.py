"""GET /signed-assets/<signed>: serve a generated file after re-checking who is asking.

The signed token names the asset and expires within minutes; the session cookie must belong
to a member allowed to view the asset's project (policy `asset_view`). Expired links say so
(410); tampered links, other orgs' assets and projects outside a scoped editor's access all
answer 404, so existence does not leak. (Not under /assets/: the production frontend
serves its bundles there.) With S3 storage the answer is a redirect to a
presigned URL valid for a minute.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from core import db, routes
from services import auth as auth_service
from services import storage
from services.errors import DomainError

ASSET_ROUTE = storage.ASSET_ROUTE_PREFIX + "{signed}"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


async def serve_asset(request: Request) -> Response:
    signed = request.path_params["signed"]
    download = request.query_params.get("download") == "1"
    token = request.cookies.get(routes.SESSION_COOKIE, "")
    with db.new_session() as session:  # reads; session_resolve commits its touch
        resolved = auth_service.session_resolve(session=session, token=token) if token else None
        if resolved is None:
            return _error(401, "signed_out", "Sign in to view this file.")
        user, _ = resolved
        try:
            delivery = storage.asset_deliver(
                session=session, user=user, signed=signed, download=download
            )
        except DomainError as error:
            return _error(error.http_status, error.code, error.message)
    if delivery.redirect_url is not None:
        return RedirectResponse(
            delivery.redirect_url, status_code=302, headers={"Cache-Control": "no-store"}
        )
    asset = delivery.asset
    disposition = "attachment" if download else "inline"
    return Response(
        delivery.data,
        media_type=asset.content_type,
        headers={
            "Cache-Control": "private, max-age=60",
            "Content-Disposition": f'{disposition}; filename="{asset.filename}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
