"""Pydantic models of the Infobip-shaped bodies, for the OpenAPI document only: requests
are checked by ``veil.domain.infobip`` and responses built by ``shapes``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ServiceException(BaseModel):
    messageId: str = Field(examples=["BAD_REQUEST"])
    text: str = Field(examples=["[name : may not be empty]"])


class RequestError(BaseModel):
    serviceException: ServiceException


class ErrorBody(BaseModel):
    requestError: RequestError


class ActionBody(BaseModel):
    type: str = Field(examples=["VOICE_NUMBER_MASKING"])
    callbackUrl: str
    statusUrl: str | None = None


class ActionObject(ActionBody):
    actionKey: str


class ActionList(BaseModel):
    actions: list[ActionObject]


class ConfigBody(BaseModel):
    name: str = Field(description="unique per account; letters, digits and spaces, ≤100")
    callbackUrl: str
    statusUrl: str | None = None
    backupCallbackUrl: str | None = None
    backupStatusUrl: str | None = None
    description: str | None = None


class ConfigObject(ConfigBody):
    key: str
    insertDateTime: str = Field(examples=["2024-02-01T06:28:15.123+0000"])
    updateDateTime: str


class NumbersBody(BaseModel):
    numbers: list[str] | None = Field(None, examples=[["+14155550100"]])
    numberKeys: list[str] | None = None


class LinkedNumber(BaseModel):
    numberKey: str
    number: str = Field(examples=["14155550100"])


class LinkedNumbers(BaseModel):
    numbers: list[LinkedNumber]


class NumberObject(LinkedNumber):
    country: str
    capabilities: list[str]
    shared: bool
    maskingConfigKey: str | None = Field(
        description="Veil's: the action or configuration the number belongs to; "
        "null when it serves masking sessions"
    )


class NumberList(BaseModel):
    numbers: list[NumberObject]
    numberCount: int


class Credentials(BaseModel):
    apiId: str
    key: str


class UploadBody(BaseModel):
    url: str | None = Field(None, description="where Veil fetches the mp3 (≤4 MB)")
    content: str | None = Field(None, description="the mp3 in base64, instead of url")


class Uploaded(BaseModel):
    fileId: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "invalid request"},
    401: {"model": ErrorBody, "description": "Invalid login details"},
    404: {"model": ErrorBody, "description": "no such resource for this account"},
}

SECURITY_SCHEME = {
    "infobipApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "App <your auth_token>",
    },
    "infobipBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "auth_id as user, auth_token as password",
    },
}

_PATH_PARAMS = {
    "numberKey": "The number's numberKey (GET /numbers/1/numbers lists them)",
    "actionKey": "The action's actionKey",
    "key": "The configuration's key",
}


def operation(*path_params: str, body: type[BaseModel] | None = None) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its path and body itself."""
    extra: dict[str, Any] = {
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": _PATH_PARAMS[name],
            }
            for name in path_params
        ],
        "security": [{"infobipApiKey": []}, {"infobipBasic": []}],
    }
    if body is not None:
        extra["requestBody"] = {
            "content": {"application/json": {"schema": body.model_json_schema()}},
            "required": True,
        }
    return extra
