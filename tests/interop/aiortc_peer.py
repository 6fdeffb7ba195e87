"""An independent WebRTC peer, built on aiortc, that speaks callscope's signaling protocol.

It logs in to a callscope signaling server, then answers every call (--answer) or places
calls (--call USER). Each call sends H.264 video carrying a frame marker plus an Opus tone,
reads the markers back from the video it receives, and prints one JSON object per line:

    python aiortc_peer.py --server ws://127.0.0.1:7878 --user bob --user-sig SIG --answer
    python aiortc_peer.py --server ws://127.0.0.1:7878 --user alice --user-sig SIG \
        --call bob --calls 3 --seconds 5 --resolution 720p

The answerer runs until it is killed or its standard input closes.
"""

import argparse
import asyncio
import fractions
import functools
import json
import logging
import operator
import os
import signal
import sys
import threading
import time
import uuid

import aioice.ice
import aiortc.rtcrtpsender
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.h264 import H264Encoder
from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError
from aiortc.mediastreams import MediaStreamError
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException

PROTOCOL_VERSION = 1
RESOLUTIONS = {"480p": (640, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
FPS = 30
AUDIO_RATE, AUDIO_SAMPLES = 48000, 960  # 20 ms frames
MARKER_MAGIC = 0xC5
MASK48 = (1 << 48) - 1
RING_SECS = 30
CONNECT_TIMEOUT_S = 20.0
END_OF_CALL = {"hung_up", "call_ended", "canceled", "rejected", "line_busy", "no_response"}
DESCRIPTION_ERRORS = (ValueError, TypeError, KeyError, InternalError, InvalidAccessError,
                      InvalidStateError, OperationError)

# aioice leaves out 127.0.0.1, and loopback is all these calls use.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def unix_us48():
    return (time.time_ns() // 1000) & MASK48


def block_size(width):
    return max((width // 40) & ~1, 8)


def marker_bytes(counter, capture_us):
    data = bytes([MARKER_MAGIC]) + (counter & 0xFFFFFFFF).to_bytes(4, "big") + capture_us.to_bytes(6, "big")
    return data + bytes([functools.reduce(operator.xor, data)])


def read_marker(luma, block):
    """(counter, capture_us) from a Y plane, or None when it holds no valid marker."""
    if luma.shape[0] < 4 * block or luma.shape[1] < 33 * block:
        return None
    area = luma[block : 4 * block, block : 33 * block].reshape(3, block, 32, block)
    half = block // 2
    start = (block - half) // 2
    means = area[:, start : start + half, :, start : start + half].mean(axis=(1, 3))
    data = np.packbits((means > 125).reshape(96)).tobytes()
    if data[0] != MARKER_MAGIC or data[11] != functools.reduce(operator.xor, data[:11]):
        return None
    return int.from_bytes(data[1:5], "big"), int.from_bytes(data[5:11], "big")


class MarkerVideoTrack(MediaStreamTrack):
    """Grey I420 frames at 30 fps: a diagonal gradient sliding sideways, the marker on top."""

    kind = "video"

    def __init__(self, width, height):
        super().__init__()
        self.width, self.height, self.block = width, height, block_size(width)
        x, y = np.arange(width + 256)[None, :], np.arange(height)[:, None]
        self.gradient = (16 + ((x + y // 2) % 256) * 219 // 255).astype(np.uint8)
        self.buffer = np.full((height * 3 // 2, width), 128, np.uint8)  # chroma stays 128
        self.counter = 0
        self.start = self.next_at = None

    async def recv(self):
        if self.start is None:
            self.start = self.next_at = time.monotonic()
        await asyncio.sleep(max(0.0, self.next_at - time.monotonic()))
        now = time.monotonic()
        self.next_at = max(self.next_at + 1 / FPS, now)  # a slow encoder lowers the rate, no bursts
        w, h, b = self.width, self.height, self.block
        shift = (self.counter * 4) % 256
        self.buffer[:h] = self.gradient[:, shift : shift + w]
        bits = np.unpackbits(np.frombuffer(marker_bytes(self.counter, unix_us48()), np.uint8))
        blocks = np.where(bits.reshape(3, 32), 235, 16).astype(np.uint8)
        self.buffer[b : 4 * b, b : 33 * b] = blocks.repeat(b, axis=0).repeat(b, axis=1)
        frame = av.VideoFrame.from_ndarray(self.buffer, format="yuv420p")
        frame.pts, frame.time_base = int((now - self.start) * 90000), fractions.Fraction(1, 90000)
        self.counter += 1
        return frame


class ToneAudioTrack(MediaStreamTrack):
    """A 440 Hz tone, 16-bit mono at 48 kHz."""

    kind = "audio"

    def __init__(self):
        super().__init__()
        t = np.arange(AUDIO_RATE)
        self.tone = (np.sin(2 * np.pi * 440 * t / AUDIO_RATE) * 6000).astype(np.int16)
        self.pts, self.start = 0, None

    async def recv(self):
        if self.start is None:
            self.start = time.monotonic()
        await asyncio.sleep(max(0.0, self.start + self.pts / AUDIO_RATE - time.monotonic()))
        offset = self.pts % AUDIO_RATE
        samples = self.tone[offset : offset + AUDIO_SAMPLES].reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate, frame.pts = AUDIO_RATE, self.pts
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self.pts += AUDIO_SAMPLES
        return frame


class PresetH264Encoder(H264Encoder):
    """aiortc's H.264 encoder with the x264 preset given by --x264-preset."""

    preset = "medium"

    def _encode_frame(self, frame, force_keyframe):
        old = self.codec
        if old is None or (frame.width, frame.height) != (old.width, old.height) or (
            abs(self.target_bitrate - old.bit_rate) / old.bit_rate > 0.1
        ):
            # The same settings aiortc uses, plus the preset; the base class then keeps it.
            self.buffer_data, self.buffer_pts = b"", None
            codec = self.codec = av.CodecContext.create("libx264", "w")
            codec.width, codec.height, codec.pix_fmt = frame.width, frame.height, "yuv420p"
            codec.bit_rate = self.target_bitrate
            codec.framerate, codec.time_base = fractions.Fraction(FPS, 1), fractions.Fraction(1, FPS)
            codec.options = {"level": "31", "tune": "zerolatency", "preset": self.preset}
            codec.profile = "Baseline"
        yield from super()._encode_frame(frame, force_keyframe)


def preferred_codecs(kind, offering):
    """Opus for audio; H.264 for video: constrained baseline only in an offer, first in an answer."""
    codecs = aiortc.RTCRtpSender.getCapabilities(kind).codecs
    if kind == "audio":
        return [c for c in codecs if c.mimeType.lower() == "audio/opus"]
    h264 = [c for c in codecs if c.mimeType.lower() == "video/h264"]
    h264.sort(key=lambda c: c.parameters.get("profile-level-id") != "42e01f")
    return h264[:1] if offering else h264


def describe(description):
    return json.dumps({"type": description.type, "sdp": description.sdp})


class Call:
    """One peer connection and what it measured."""

    def __init__(self, call_id, remote, role, resolution):
        self.call_id, self.remote, self.role, self.resolution = call_id, remote, role, resolution
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.cpu_start = time.process_time()
        self.accepted_at = self.connected_at = self.ended_at = None
        self.first_frame_at = self.last_frame_at = self.last_counter = self.frame_size = None
        self.frames = self.audio_frames = self.lost_frames = self.bad_markers = 0
        self.g2g_ms, self.tasks = [], []
        self.pc.on("connectionstatechange", self.on_state)
        self.pc.on("track", self.on_track)

    @property
    def state(self):
        return self.pc.connectionState

    def on_state(self):
        if self.state == "connected" and self.connected_at is None:
            self.connected_at = time.monotonic()

    def on_track(self, track):
        consume = self.consume_video if track.kind == "video" else self.consume_audio
        self.tasks.append(asyncio.ensure_future(consume(track)))

    async def consume_video(self, track):
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            frame.to_ndarray(format="rgba")  # what a renderer would do
            arrived_us, arrived_at = unix_us48(), time.monotonic()
            self.first_frame_at = self.first_frame_at or arrived_at
            self.last_frame_at, self.frame_size = arrived_at, [frame.width, frame.height]
            self.frames += 1
            marker = read_marker(frame.to_ndarray(format="yuv420p")[: frame.height], block_size(frame.width))
            if marker is None:
                self.bad_markers += 1
                continue
            counter, capture_us = marker
            if self.last_counter is not None and counter > self.last_counter:
                self.lost_frames += counter - self.last_counter - 1
            self.last_counter = counter
            self.g2g_ms.append(((arrived_us - capture_us) & MASK48) / 1000)

    async def consume_audio(self, track):
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            self.audio_frames += 1

    def add_media(self, kinds, offering):
        for kind in kinds:
            track = MarkerVideoTrack(*RESOLUTIONS[self.resolution]) if kind == "video" else ToneAudioTrack()
            transceiver = self.pc.addTransceiver(track, direction="sendrecv")
            transceiver.setCodecPreferences(preferred_codecs(kind, offering))

    async def offer(self):
        self.add_media(["audio", "video"], offering=True)
        await self.pc.setLocalDescription(await self.pc.createOffer())  # returns once ICE gathered
        return describe(self.pc.localDescription)

    async def on_description(self, description):
        """Applies the remote offer or answer; returns our answer to an offer, else None."""
        fields = json.loads(description)
        remote = RTCSessionDescription(sdp=fields["sdp"], type=fields["type"])
        if remote.type != ("offer" if self.role == "callee" else "answer") or self.pc.remoteDescription:
            return None
        if remote.type == "offer":
            kinds = [line[2:].split()[0] for line in remote.sdp.splitlines() if line.startswith("m=")]
            self.add_media([kind for kind in kinds if kind in ("audio", "video")], offering=False)
        await self.pc.setRemoteDescription(remote)
        if remote.type == "answer":
            return None
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return describe(self.pc.localDescription)

    async def close(self):
        self.ended_at = time.monotonic()
        await self.pc.close()
        if self.tasks:  # a track whose receiver never started does not end on close
            _, pending = await asyncio.wait(self.tasks, timeout=1)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    def report(self):
        def since_accept(moment):
            return None if moment is None else round((moment - self.accepted_at) * 1000, 1)

        def percentile(q):
            return round(float(np.percentile(self.g2g_ms, q)), 2) if self.g2g_ms else None

        span = (self.last_frame_at or 0) - (self.first_frame_at or 0)
        return {
            "call_id": self.call_id, "role": self.role, "remote": self.remote,
            "accept_to_connected_ms": since_accept(self.connected_at),
            "accept_to_first_frame_ms": since_accept(self.first_frame_at),
            "frames_decoded": self.frames,
            "fps": round((self.frames - 1) / span, 2) if span > 0 else 0.0,
            "lost_frames": self.lost_frames, "bad_markers": self.bad_markers,
            "g2g_ms_p50": percentile(50), "g2g_ms_p95": percentile(95),
            "g2g_ms": [round(sample, 2) for sample in self.g2g_ms],
            "audio_frames": self.audio_frames, "received_size": self.frame_size,
            "seconds": round(self.ended_at - self.connected_at, 3) if self.connected_at else 0.0,
            "cpu_s": round(time.process_time() - self.cpu_start, 3),
        }


class Stop(Exception):
    """The peer must stop: a signal, standard input closed, or the server went away."""


class Peer:
    def __init__(self, args):
        self.args = args
        self.inbox = asyncio.Queue()
        self.ws = None
        self.early_offers = {}
        self.stopping = False

    def stop(self, reason):
        self.stopping = True
        self.inbox.put_nowait({"type": "_stop", "reason": reason})

    async def send(self, kind, **fields):
        await self.ws.send(json.dumps({"type": kind, **fields}))

    async def next_message(self, timeout):
        """The next server message, or None after `timeout` seconds."""
        try:
            message = await asyncio.wait_for(self.inbox.get(), timeout)
        except asyncio.TimeoutError:
            return None
        if message["type"] in ("_stop", "_closed", "kicked", "user_sig_expired"):
            raise Stop(message.get("reason") or f"connection over: {message['type'].strip('_')}")
        return message

    async def read_loop(self):
        try:
            async for raw in self.ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(message, dict) and "type" in message:
                    self.inbox.put_nowait(message)
        except ConnectionClosed:
            pass
        self.inbox.put_nowait({"type": "_closed"})

    async def run(self):
        try:
            async with connect(self.args.server, proxy=None, open_timeout=10, max_size=None) as ws:
                self.ws = ws
                reader = asyncio.ensure_future(self.read_loop())
                try:
                    contacts = await self.log_in()
                    emit("ready", user=self.args.user)
                    return await (self.answer_calls() if self.args.answer else self.place_calls(contacts))
                finally:
                    reader.cancel()
        except Stop as stop:
            if self.stopping:
                return 0
            emit("error", error=str(stop))
        except ConnectionClosed:
            emit("error", error="connection over: closed")
        except (OSError, WebSocketException, asyncio.TimeoutError) as error:
            emit("error", error=f"cannot reach {self.args.server}: {error or type(error).__name__}")
        return 1

    async def log_in(self):
        args = self.args
        await self.send("login", version=PROTOCOL_VERSION, user_id=args.user, user_sig=args.user_sig)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = await self.next_message(deadline - time.monotonic())
            if message and message["type"] == "welcome":
                return message.get("contacts", [])
            if message and message["type"] == "error":
                raise Stop(f"login refused: {message.get('code')} {message.get('message')}")
        raise Stop("no welcome from the server")

    def note(self, message):
        if message["type"] == "error":
            emit("error", error="server error", code=message.get("code"),
                 message=message.get("message"), call_id=message.get("call_id"))

    async def answer_calls(self):
        while True:
            message = await self.next_message(None)
            if message["type"] == "invited":
                call = Call(message["call_id"], message["caller"], "callee", self.args.resolution)
                await self.send("accept", call_id=call.call_id)
                call.accepted_at = time.monotonic()
                await self.converse(call, self.early_offers.pop(call.call_id, None))
            elif message["type"] == "sdp":  # an offer ahead of its invitation
                self.early_offers[message["call_id"]] = message
            else:
                self.note(message)

    async def place_calls(self, contacts):
        callee = self.args.call
        deadline = time.monotonic() + 10  # give a callee that starts alongside us time to log in
        while time.monotonic() < deadline and not any(
            c.get("user_id") == callee and c.get("online") for c in contacts
        ):
            await self.send("contacts")
            message = await self.next_message(0.25)
            if message and message["type"] == "contacts":
                contacts = message.get("contacts", [])
        failures = 0
        for _ in range(self.args.calls):
            call = Call(f"{self.args.user}-{uuid.uuid4().hex[:12]}", callee, "caller", self.args.resolution)
            offer = await call.offer()
            await self.send("invite", call_id=call.call_id, callees=[callee], media="video",
                            group=False, timeout_secs=RING_SECS)
            await self.send("sdp", call_id=call.call_id, to=callee, description=offer)
            failures += not await self.converse(call)
        return 1 if failures else 0

    async def converse(self, call, message=None):
        """Runs one call until it ends; True when it ran its course."""
        ok, hang_up, started = False, True, time.monotonic()
        try:
            while True:
                kind = message and message["type"]
                if message is None:
                    pass
                elif message.get("call_id") != call.call_id:
                    if kind == "invited":
                        await self.send("line_busy", call_id=message["call_id"])
                    else:
                        self.note(message)
                elif kind == "accepted":
                    call.accepted_at = time.monotonic()
                elif kind == "sdp":
                    try:
                        answer = await call.on_description(message["description"])
                    except DESCRIPTION_ERRORS as error:
                        emit("error", error=f"bad session description: {error!r}", call_id=call.call_id)
                        break
                    if answer is not None:
                        await self.send("sdp", call_id=call.call_id, to=call.remote, description=answer)
                elif kind in END_OF_CALL or (kind == "invite_delivered" and message.get("offline")):
                    hang_up = False
                    ok = call.role == "callee" and kind in ("hung_up", "call_ended")
                    if not ok:
                        reason = "callee offline" if kind == "invite_delivered" else kind
                        emit("error", error=f"call ended early: {reason}", call_id=call.call_id)
                    break
                elif kind == "error":
                    self.note(message)
                    break
                now = time.monotonic()
                connected_for = now - (call.connected_at or now)
                if call.role == "caller" and call.connected_at and connected_for >= self.args.seconds:
                    ok = True
                    break
                # Ringing lasts up to RING_SECS; media then has CONNECT_TIMEOUT_S to connect.
                limit = (call.accepted_at or started + RING_SECS) + CONNECT_TIMEOUT_S
                if call.state == "failed" or (call.connected_at is None and now > limit):
                    emit("error", error=f"media did not connect (state {call.state})", call_id=call.call_id)
                    break
                message = await self.next_message(0.1)
            if hang_up:
                await self.send("hangup", call_id=call.call_id)
        except Stop:
            try:
                await self.send("hangup", call_id=call.call_id)
            except ConnectionClosed:
                pass
            raise
        finally:
            await call.close()
            if call.accepted_at is not None:
                emit("call_done", **call.report())
        return ok


def watch_stdin(loop, peer):
    def read_until_closed():
        try:  # os.read: a daemon thread blocked in sys.stdin's buffered read breaks shutdown
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        loop.call_soon_threadsafe(peer.stop, "standard input closed")

    threading.Thread(target=read_until_closed, daemon=True).start()


async def main_async(args):
    peer = Peer(args)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, peer.stop, "signal")
    if args.answer:
        watch_stdin(loop, peer)
    return await peer.run()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="signaling URL, e.g. ws://127.0.0.1:7878")
    parser.add_argument("--user", required=True)
    parser.add_argument("--user-sig", required=True)
    parser.add_argument("--resolution", choices=sorted(RESOLUTIONS), default="720p")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--answer", action="store_true", help="accept every call")
    mode.add_argument("--call", metavar="USER", help="call USER")
    parser.add_argument("--calls", type=int, default=1, help="calls to place, one after another")
    parser.add_argument("--seconds", type=float, default=5.0, help="media time per call")
    parser.add_argument("--x264-preset", help="x264 preset of the video sent (ultrafast, veryfast, ...); "
                        "default: aiortc's own settings (x264's medium)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.x264_preset:
        PresetH264Encoder.preset = args.x264_preset
        stock_get_encoder = aiortc.rtcrtpsender.get_encoder
        aiortc.rtcrtpsender.get_encoder = lambda codec: (
            PresetH264Encoder() if codec.mimeType.lower() == "video/h264" else stock_get_encoder(codec)
        )
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
