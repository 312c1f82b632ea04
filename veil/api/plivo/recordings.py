"""The Recording resource (``/v1/Account/{auth_id}/Recording/``), as Plivo's Voice API
serves it and its SDKs call it (``client.recordings.list/get/delete``), and the
recordings' files (``.../Recording/{recording_id}.mp3`` or ``.wav``), behind the same
Basic authentication.

The file route comes first: ``{recording_id}/`` would also match ``{id}.mp3/`` (the edge
adds the trailing slash to every path).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from veil.api.plivo import schemas
from veil.api.plivo.caller import caller
from veil.api.plivo.shapes import api_id, meta, recording_object
from veil.api.responses import json_response
from veil.domain.recordings import MEDIA_TYPES, parse_recording_query
from veil.service import recordings as service

router = APIRouter(
    prefix="/v1/Account/{auth_id}/Recording", tags=["Recordings"], responses=schemas.ERRORS
)


@router.get(
    "/{recording_id}.{file_format}/",
    openapi_extra=schemas.operation("auth_id", "recording_id", "file_format"),
    summary="Download a recording's file",
    response_class=Response,
    responses={200: {"content": {media: {} for media in MEDIA_TYPES.values()}}},
)
async def download(request: Request) -> Response:
    who = await caller(request)
    params = request.path_params
    recording = await service.recording_file(
        who.ctx, who.account, params["recording_id"], params["file_format"]
    )
    return FileResponse(
        recording.path,
        media_type=MEDIA_TYPES[recording.file_format],
        filename=f"{recording.recording_id}.{recording.file_format}",
        content_disposition_type="inline",
    )


@router.get(
    "/",
    openapi_extra=schemas.operation("auth_id"),
    summary="List recordings (filters in the query string)",
)
async def list_(request: Request) -> Response:
    who = await caller(request)
    auth_id = who.account.auth_id
    filters = parse_recording_query(request.query_params.multi_items(), who.ctx.clock.now())
    found, total = await service.list_recordings(who.ctx, who.account, filters)
    base = f"{who.public_url}/v1/Account/{auth_id}/Recording/"
    page = meta(
        base=base, limit=filters.limit, offset=filters.offset, total=total, params=filters.echo
    )
    # Plivo's recording list says "count"; its SDK fixtures, like every other list of
    # Veil's, "total_count". Both are there.
    page["count"] = total
    return json_response(
        {
            "api_id": api_id(),
            "meta": page,
            "objects": [recording_object(r, auth_id, who.public_url) for r in found],
        }
    )


@router.get(
    "/{recording_id}/",
    openapi_extra=schemas.operation("auth_id", "recording_id"),
    summary="Get a recording",
)
async def get(request: Request) -> Response:
    who = await caller(request)
    recording = await service.get_recording(
        who.ctx, who.account, request.path_params["recording_id"]
    )
    return json_response(
        {"api_id": api_id(), **recording_object(recording, who.account.auth_id, who.public_url)}
    )


@router.delete(
    "/{recording_id}/",
    openapi_extra=schemas.operation("auth_id", "recording_id"),
    status_code=204,
    summary="Delete a recording and its file",
)
async def remove(request: Request) -> Response:
    who = await caller(request)
    await service.delete_recording(who.ctx, who.account, request.path_params["recording_id"])
    return Response(status_code=204)
