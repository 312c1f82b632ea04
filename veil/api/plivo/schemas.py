"""Pydantic models of the Plivo-shaped bodies, for the OpenAPI document.

Requests are parsed by veil.domain.session_params (Plivo's leniency cannot be expressed
as a strict schema) and responses built by ``shapes``; these models describe both for
/openapi.json and /docs.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    api_id: str
    error: str = Field(examples=["Number pool exhausted or not available."])


class SessionCreateBody(BaseModel):
    first_party: str = Field(description="E.164, with or without +", examples=["+14155550100"])
    second_party: str = Field(examples=["+14155550199"])
    session_expiry: int | None = Field(None, description="seconds; default 3600 (legacy 1800)")
    call_time_limit: int | None = Field(None, description="seconds; default 3600 (legacy 14400)")
    ring_timeout: int | None = Field(None, description="seconds; default 120")
    record: bool | None = None
    record_file_format: str | None = Field(None, description="mp3 or wav")
    recording_callback_url: str | None = None
    recording_callback_method: str | None = Field(None, description="GET or POST")
    callback_url: str | None = None
    callback_method: str | None = Field(None, description="GET or POST")
    initiate_call_to_first_party: bool | None = None
    first_party_play_url: str | None = None
    second_party_play_url: str | None = None
    is_pin_authentication_required: bool | None = None
    generate_pin: bool | None = None
    generate_pin_length: int | None = Field(None, description="4 to 15; default 4")
    first_party_pin: str | None = None
    second_party_pin: str | None = None
    pin_prompt_play: str | None = None
    pin_retry: int | None = Field(None, description="0 to 5; default 1")
    pin_retry_wait: int | None = Field(None, description="5 to 10 seconds; default 5")
    incorrect_pin_play: str | None = None
    unknown_caller_play: str | None = None
    subaccount: str | None = None
    geomatch: bool | None = Field(None, description="default true (legacy false)")
    create_session_with_single_party: bool | None = None
    virtual_number_cooloff_period: int | None = Field(None, description="0 to 3600 seconds")
    force_pin_authentication: bool | None = None


class SessionUpdateBody(BaseModel):
    session_expiry: int | None = None
    call_time_limit: int | None = None
    ring_timeout: int | None = None
    record: bool | None = None
    record_file_format: str | None = None
    recording_callback_url: str | None = None
    recording_callback_method: str | None = None
    callback_url: str | None = None
    callback_method: str | None = None
    first_party_play_url: str | None = None
    second_party_play_url: str | None = None
    first_party: str | None = Field(None, description="single-party sessions only")
    second_party: str | None = Field(None, description="single-party sessions only")


class SessionObject(BaseModel):
    session_uuid: str
    first_party: str
    second_party: str
    virtual_number: str
    status: str = Field(description="active, in-progress or expired")
    created_time: str = Field(examples=["2024-02-01 06:28:15 +0000 UTC"])
    modified_time: str
    expiry_time: str
    duration: int
    amount: int
    interaction: list[dict[str, Any]] | None
    total_call_amount: float
    total_call_count: int
    total_call_billed_duration: int
    total_session_amount: float
    last_interaction_time: str
    subaccount: str
    call_time_limit: int
    ring_timeout: int
    record: bool
    record_file_format: str
    recording_callback_url: str
    recording_callback_method: str
    callback_url: str
    callback_method: str
    initiate_call_to_first_party: bool
    first_party_play_url: str
    second_party_play_url: str
    is_pin_authentication_required: bool
    generate_pin: bool
    generate_pin_length: int
    first_party_pin: str
    second_party_pin: str
    pin_prompt_play: str
    pin_retry: int
    pin_retry_wait: int
    incorrect_pin_play: str
    unknown_caller_play: str
    geomatch: bool
    force_pin_authentication: bool
    create_session_with_single_party: bool
    virtual_number_cooloff_period: int


class SessionListObject(SessionObject):
    resource_uri: str


class SessionCreated(BaseModel):
    api_id: str
    session_uuid: str
    virtual_number: str = Field(examples=["+14155550123"])
    message: str = Field(examples=["Session created"])
    session: SessionObject


class SessionGot(BaseModel):
    api_id: str
    response: SessionObject


class SessionUpdated(BaseModel):
    api_id: str
    message: str = Field(examples=["Session updated"])
    session: SessionObject


class Message(BaseModel):
    api_id: str
    message: str


class Meta(BaseModel):
    limit: int
    offset: int
    total_count: int
    next: str | None
    previous: str | None


class SessionPage(BaseModel):
    meta: Meta
    objects: list[SessionListObject]


class SessionList(BaseModel):
    api_id: str
    response: SessionPage


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "invalid parameter (Plivo's message)"},
    401: {"model": ErrorBody, "description": "wrong credentials"},
    404: {"model": ErrorBody, "description": "no such resource for this account"},
}


SECURITY_SCHEME = {
    "plivoAuth": {
        "type": "http",
        "scheme": "basic",
        "description": "auth_id as user, auth_token as password",
    }
}

_PATH_PARAMS = {
    "auth_id": "Your auth_id (MA... or SA..., 20 characters)",
    "session_uuid": "The session's session_uuid",
    "number": "A phone number in E.164, with or without +",
    "subaccount": "A subaccount's auth_id (SA...)",
    "recording_id": "The recording's recording_id",
    "file_format": "The recording's format: mp3 or wav",
}


def operation(*path_params: str, body: type[BaseModel] | None = None) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its path, query and body itself (so that
    FastAPI does no per-request dependency work): its parameters, body and security."""
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
        "security": [{"plivoAuth": []}],
    }
    if body is not None:
        extra["requestBody"] = {
            "content": {"application/json": {"schema": body.model_json_schema()}},
            "required": True,
        }
    return extra
