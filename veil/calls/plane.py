"""The call plane of one process: the media engine ``VEIL_MEDIA`` names, and the B2BUA
on ``VEIL_SIP_LISTEN``. Started and stopped with the application."""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from veil.calls.b2bua import B2bua, CallSettings
from veil.calls.media import Anchored, MediaEngine, PassThrough
from veil.calls.originate import originate
from veil.calls.recorder import Recorder
from veil.config import Settings, split_host_port
from veil.media.dtmf import DtmfListener
from veil.media.ng import NgClient, NgPool
from veil.media.prompts import Prompts
from veil.media.rtpengine import RtpengineConfig, SupervisedRtpengine, find_binary, free_udp_port
from veil.service.context import ServiceContext
from veil.webhooks.ask import CustomerAsker

log = logging.getLogger("veil.calls")


class CallPlane:
    def __init__(self, settings: Settings, ctx: ServiceContext) -> None:
        self.settings = settings
        self.ctx = ctx
        self.b2bua: B2bua | None = None
        self.rtpengine: SupervisedRtpengine | None = None
        self._closers: list[Callable[[], object]] = []

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            # Whatever started (rtpengine) must not outlive a failed start (a SIP port
            # already in use, say): the application never calls stop() then.
            await self.stop()
            raise

    async def _start(self) -> None:
        settings = self.settings
        host, port = split_host_port(settings.sip_listen)
        media = await self._media(host)
        call_settings = CallSettings.parse(
            settings.trunk_outbound,
            settings.trunk_username,
            settings.trunk_password,
            settings.trunk_allow,
        )
        self.b2bua = B2bua(self.ctx, call_settings, media, host, port)
        self.b2bua.asker = CustomerAsker(
            timeout=settings.infobip_callback_timeout,
            block_private=settings.block_private_targets,
        )
        if self.ctx.media.available:
            recordings_dir = self.settings.recordings_dir.resolve()
            self.b2bua.recordings_dir = recordings_dir
            self.b2bua.recorder = Recorder(recordings_dir / "spool")
            self.b2bua.prompts = Prompts(recordings_dir / "prompt-cache")
        await self.b2bua.start()
        self.ctx.originate.append(functools.partial(originate, self.b2bua))

    async def _media(self, host: str) -> MediaEngine:
        mode = self.settings.media
        if mode == "off":
            log.info("media: off (SDP passed through, RTP flows end to end)")
            self.ctx.media.available = False
            return PassThrough()
        if mode.startswith("udp:"):
            pool = await NgPool.connect(mode)
            self._closers.append(pool.close)
            # Their dtmf-log-dest must name this address (and their recording-dir be
            # VEIL_RECORDINGS_DIR/spool, shared) for PIN entry and recordings.
            dtmf = await DtmfListener.start(*split_host_port(self.settings.media_dtmf_listen))
            self._closers.append(dtmf.close)
            log.info("media: rtpengine at %s", mode[4:])
            return Anchored(pool, dtmf, host)
        binary = find_binary()
        if binary is None:
            log.warning("media: rtpengine is not installed; SDP passed through (VEIL_MEDIA=auto)")
            self.ctx.media.available = False
            return PassThrough()
        workdir = Path(tempfile.mkdtemp(prefix="veil-rtpengine-"))
        port_min, port_max = self.settings.media_port_range()
        config = RtpengineConfig(
            interface=host,
            ng_port=free_udp_port("127.0.0.1"),
            dtmf_port=free_udp_port("127.0.0.1"),
            port_min=port_min,
            port_max=port_max,
            recording_dir=self.settings.recordings_dir.resolve() / "spool",
            workdir=workdir,
        )
        self.rtpengine = SupervisedRtpengine(binary, config)
        await self.rtpengine.start()
        client = await NgClient.connect(*self.rtpengine.ng_address)
        self._closers.append(client.close)
        dtmf = await DtmfListener.start("127.0.0.1", config.dtmf_port)
        self._closers.append(dtmf.close)
        return Anchored(client, dtmf, host)

    async def stop(self) -> None:
        if self.b2bua is not None:
            await self.b2bua.close()
        for close in self._closers:
            close()
        if self.b2bua is not None:
            if self.b2bua.prompts is not None:
                await self.b2bua.prompts.aclose()
            if self.b2bua.recorder is not None:
                self.b2bua.recorder.close()
            if self.b2bua.asker is not None:
                await self.b2bua.asker.aclose()
        if self.rtpengine is not None:
            await self.rtpengine.stop()
            # Its generated config and log; recordings live under VEIL_RECORDINGS_DIR.
            shutil.rmtree(self.rtpengine.config.workdir, ignore_errors=True)
