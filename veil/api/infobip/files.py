"""Audio file uploads: ``POST /numbers/1/files`` (v1) and ``POST /voice/masking/1/upload``
(v2), the same operation under two paths."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from veil.api.infobip import schemas
from veil.api.infobip.auth import caller
from veil.api.infobip.body import MAX_UPLOAD_BYTES, read_json
from veil.api.responses import json_response
from veil.domain import infobip as rules
from veil.service.infobip_files import upload_file

router = APIRouter(tags=["Infobip: audio files"], responses=schemas.ERRORS)


async def upload(request: Request) -> Response:
    who = await caller(request)
    body = await read_json(
        request, limit=MAX_UPLOAD_BYTES, too_large=f"[content : {rules.FILE_TOO_LARGE}]"
    )
    file_id = await upload_file(
        who.ctx,
        who.account,
        body,
        who.settings.files_dir,
        block_private=who.settings.block_private_targets,
    )
    return json_response({"fileId": file_id})


for path in ("/numbers/1/files", "/voice/masking/1/upload"):
    router.add_api_route(
        path,
        upload,
        methods=["POST"],
        openapi_extra=schemas.operation(body=schemas.UploadBody),
        response_model=schemas.Uploaded,
        summary="Upload an mp3 (≤4 MB) by url or as base64 content; answers its fileId",
    )
