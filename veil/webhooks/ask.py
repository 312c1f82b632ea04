"""Asking an Infobip-style configuration's callbackUrl what to do with a call.

Unlike a report, the answer is needed now: the caller is waiting. So there is no
outbox and no retry later: one POST to ``callbackUrl`` and, if it times out, fails or
answers nothing Veil can carry out, one to ``backupCallbackUrl``; then the call ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson

from veil.domain.delivery import url_problem
from veil.domain.infobip import BadAnswer, Command, MaskingConfig, parse_command
from veil.webhooks.delivery import private_target
from veil.webhooks.http1 import CallbackClient, CallbackHttpError
from veil.webhooks.signing import infobip_authorization, request_url


class AskFailed(Exception):
    """Neither URL gave a command; the text says what each did."""


class CustomerAsker:
    def __init__(self, *, timeout: float, block_private: bool = False) -> None:
        self.timeout = timeout
        self.block_private = block_private
        self._client = CallbackClient()

    async def ask(
        self,
        config: MaskingConfig,
        body: dict[str, Any],
        credentials: tuple[str, str] | None,
    ) -> Command:
        content = orjson.dumps(body)
        problems: list[str] = []
        urls = [("callbackUrl", config.callback_url)]
        if config.backup_callback_url:
            urls.append(("backupCallbackUrl", config.backup_callback_url))
        for name, url in urls:
            try:
                return await self._ask_one(url, content, credentials)
            except AskFailed as exc:
                problems.append(f"{name}: {exc}")
        raise AskFailed("; ".join(problems))

    async def _ask_one(
        self, url: str, content: bytes, credentials: tuple[str, str] | None
    ) -> Command:
        problem = url_problem(url)
        if problem is not None:
            raise AskFailed(problem)
        try:  # the URL as it goes on the wire (escaped), which is what is signed
            url = request_url(url, "POST", {})
        except ValueError as exc:  # a bad port or host
            raise AskFailed(f"refused: {exc}") from None
        headers: Sequence[tuple[str, str]] = [
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ]
        if credentials is not None:
            headers = [
                *headers,
                ("Authorization", infobip_authorization(*credentials, url, content)),
            ]
        try:
            async with asyncio.timeout(self.timeout):
                if self.block_private:
                    refusal = await private_target(url)
                    if refusal is not None:
                        raise AskFailed(refusal)
                reply = await self._client.request("POST", url, headers, content)
        except TimeoutError:
            raise AskFailed(f"timeout after {self.timeout:g} s") from None
        except (CallbackHttpError, OSError) as exc:
            raise AskFailed(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
        if not 200 <= reply.status < 300:
            raise AskFailed(f"HTTP {reply.status}")
        if not reply.complete:
            raise AskFailed("the answer is too large")
        try:
            return parse_command(orjson.loads(reply.body))
        except orjson.JSONDecodeError:
            raise AskFailed("the answer is not JSON") from None
        except BadAnswer as exc:
            raise AskFailed(f"bad answer: {exc}") from None

    async def aclose(self) -> None:
        await self._client.aclose()
