"""An independent WebRTC peer, built on aiortc, that speaks callscope's signaling protocol.

It logs in to a callscope signaling server, then either answers every call (--answer) or
places calls (--call USER). Each call sends H.264 video carrying a frame marker and an Opus
tone, reads the markers back from the video it receives, and prints one JSON object per line:

    python aiortc_peer.py --server ws://127.0.0.1:7878 --user bob --user-sig SIG --answer
    python aiortc_peer.py --server ws://127.0.0.1:7878 --user alice --user-sig SIG \
        --call bob --calls 3 --seconds 5 --resolution 720p

The answerer runs until it is killed or its standard input closes.
"""

import argparse
import asyncio
import fractions
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid

import aioice.ice
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException

PROTOCOL_VERSION = 1
RESOLUTIONS = {"480p": (640, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
FPS = 30
AUDIO_RATE = 48000
AUDIO_SAMPLES = 960  # 20 ms
MARKER_MAGIC = 0xC5
MASK48 = (1 << 48) - 1
CONNECT_TIMEOUT_S = 20.0
END_OF_CALL = {"hung_up", "call_ended", "canceled", "rejected", "line_busy", "no_response"}


# aioice leaves out 127.0.0.1; calls here run over loopback only.
def loopback_host_addresses(use_ipv4, use_ipv6):
    return ["127.0.0.1"] if use_ipv4 else []


aioice.ice.get_host_addresses = loopback_host_addresses


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def unix_us48():
    return (time.time_ns() // 1000) & MASK48


def block_size(width):
    return max((width // 40) & ~1, 8)


def marker_bytes(counter, capture_us):
    data = bytearray([MARKER_MAGIC])
    data += (counter & 0xFFFFFFFF).to_bytes(4, "big")
    data += (capture_us & MASK48).to_bytes(6, "big")
    check = 0
    for byte in data:
        check ^= byte
    data.append(check)
    return bytes(data)


def read_marker(luma, block):
    """(counter, capture_us) from a Y plane, or None when no valid marker is there."""
    if luma.shape[0] < 4 * block or luma.shape[1] < 33 * block:
        return None
    area = luma[block : 4 * block, block : 33 * block].reshape(3, block, 32, block)
    half = block // 2
    start = (block - half) // 2
    means = area[:, start : start + half, :, start : start + half].mean(axis=(1, 3))
    data = np.packbits((means > 125).reshape(96)).tobytes()
    check = 0
    for byte in data[:11]:
        check ^= byte
    if data[0] != MARKER_MAGIC or data[11] != check:
        return None
    return int.from_bytes(data[1:5], "big"), int.from_bytes(data[5:11], "big")


class MarkerVideoTrack(MediaStreamTrack):
    """I420 frames at 30 fps: a moving diagonal gradient with the frame marker on top."""

    kind = "video"

    def __init__(self, width, height):
        super().__init__()
        self.width, self.height = width, height
        self.block = block = block_size(width)
        x = np.arange(width + 256)[None, :]
        y = np.arange(height)[:, None]
        self.luma = (16 + ((x + y // 2) % 256) * 219 // 255).astype(np.uint8)
        u = np.broadcast_to((64 + np.arange(height // 2) * 128 // height)[:, None], (height // 2, width // 2))
        v = np.broadcast_to((64 + np.arange(width // 2) * 128 // width)[None, :], (height // 2, width // 2))
        u, v = u.astype(np.uint8), v.astype(np.uint8)
        u[block // 2 : 2 * block, block // 2 : 33 * block // 2] = 128
        v[block // 2 : 2 * block, block // 2 : 33 * block // 2] = 128
        self.chroma = np.concatenate([u.reshape(-1, width), v.reshape(-1, width)])
        self.buffer = np.empty((height * 3 // 2, width), np.uint8)
        self.counter = 0
        self.start = self.next_at = None

    async def recv(self):
        if self.start is None:
            self.start = self.next_at = time.monotonic()
        delay = self.next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.monotonic()
        self.next_at = max(self.next_at + 1 / FPS, now)
        w, h, b = self.width, self.height, self.block
        shift = (self.counter * 4) % 256
        self.buffer[:h] = self.luma[:, shift : shift + w]
        self.buffer[h:] = self.chroma
        bits = np.unpackbits(np.frombuffer(marker_bytes(self.counter, unix_us48()), np.uint8))
        blocks = np.where(bits.reshape(3, 32), 235, 16).astype(np.uint8)
        self.buffer[b : 4 * b, b : 33 * b] = blocks.repeat(b, axis=0).repeat(b, axis=1)
        frame = VideoFrame.from_ndarray(self.buffer, format="yuv420p")
        frame.pts = int((now - self.start) * 90000)
        frame.time_base = fractions.Fraction(1, 90000)
        self.counter += 1
        return frame


class ToneAudioTrack(MediaStreamTrack):
    """A 440 Hz tone in 20 ms frames of 16-bit mono at 48 kHz."""

    kind = "audio"

    def __init__(self):
        super().__init__()
        t = np.arange(AUDIO_RATE)
        self.tone = (np.sin(2 * np.pi * 440 * t / AUDIO_RATE) * 6000).astype(np.int16)
        self.pts = 0
        self.start = None

    async def recv(self):
        if self.start is None:
            self.start = time.monotonic()
        delay = self.start + self.pts / AUDIO_RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        offset = self.pts % AUDIO_RATE
        samples = self.tone[offset : offset + AUDIO_SAMPLES].reshape(1, -1)
        frame = AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self.pts
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self.pts += AUDIO_SAMPLES
        return frame


def preferred_codecs(kind, offering):
    """Opus for audio; H.264 for video: constrained baseline only in an offer, first in an answer."""
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    if kind == "audio":
        return [c for c in codecs if c.mimeType.lower() == "audio/opus"]
    h264 = [c for c in codecs if c.mimeType.lower() == "video/h264"]
    h264.sort(key=lambda c: c.parameters.get("profile-level-id") != "42e01f")
    return h264[:1] if offering else h264


class Call:
    """One peer connection and what it measured."""

    def __init__(self, call_id, remote, role, resolution):
        self.call_id, self.remote, self.role = call_id, remote, role
        self.resolution = resolution
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.cpu_start = time.process_time()
        self.accepted_at = self.connected_at = self.first_frame_at = self.last_frame_at = None
        self.ended_at = None
        self.frames = self.audio_frames = self.lost_frames = self.bad_markers = 0
        self.last_counter = None
        self.g2g_ms = []
        self.frame_size = None
        self.tasks = []
        self.pc.on("connectionstatechange", self.on_state)
        self.pc.on("track", self.on_track)

    @property
    def state(self):
        return self.pc.connectionState

    def on_state(self):
        if self.pc.connectionState == "connected" and self.connected_at is None:
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
            frame.to_ndarray(format="rgba")
            arrived_us, arrived_at = unix_us48(), time.monotonic()
            if self.first_frame_at is None:
                self.first_frame_at = arrived_at
            self.last_frame_at = arrived_at
            self.frames += 1
            self.frame_size = (frame.width, frame.height)
            luma = frame.to_ndarray(format="yuv420p")[: frame.height]
            marker = read_marker(luma, block_size(frame.width))
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
        width, height = RESOLUTIONS[self.resolution]
        for kind in kinds:
            track = MarkerVideoTrack(width, height) if kind == "video" else ToneAudioTrack()
            transceiver = self.pc.addTransceiver(track, direction="sendrecv")
            transceiver.setCodecPreferences(preferred_codecs(kind, offering))

    async def offer(self):
        self.add_media(["audio", "video"], offering=True)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return describe(self.pc.localDescription)

    async def answer(self, description):
        """The answer to an offer (after ICE gathering), or None for anything else."""
        offer = RTCSessionDescription(**json.loads(description))
        if offer.type != "offer" or self.pc.remoteDescription is not None:
            return None
        kinds = [line[2:].split()[0] for line in offer.sdp.splitlines() if line.startswith("m=")]
        self.add_media([kind for kind in kinds if kind in ("audio", "video")], offering=False)
        await self.pc.setRemoteDescription(offer)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return describe(self.pc.localDescription)

    async def take_answer(self, description):
        answer = RTCSessionDescription(**json.loads(description))
        if answer.type == "answer" and self.pc.remoteDescription is None:
            await self.pc.setRemoteDescription(answer)

    async def close(self):
        self.ended_at = time.monotonic()
        await self.pc.close()
        # Tracks whose receiver never started do not end on close.
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=1)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    def report(self):
        def since_accept(moment):
            if moment is None or self.accepted_at is None:
                return None
            return round((moment - self.accepted_at) * 1000, 1)

        span = (self.last_frame_at or 0) - (self.first_frame_at or 0)
        g2g = np.array(self.g2g_ms) if self.g2g_ms else None
        return {
            "call_id": self.call_id,
            "role": self.role,
            "remote": self.remote,
            "accept_to_connected_ms": since_accept(self.connected_at),
            "accept_to_first_frame_ms": since_accept(self.first_frame_at),
            "frames_decoded": self.frames,
            "fps": round((self.frames - 1) / span, 2) if span > 0 else 0.0,
            "lost_frames": self.lost_frames,
            "bad_markers": self.bad_markers,
            "g2g_ms_p50": None if g2g is None else round(float(np.percentile(g2g, 50)), 2),
            "g2g_ms_p95": None if g2g is None else round(float(np.percentile(g2g, 95)), 2),
            "audio_frames": self.audio_frames,
            "received_size": list(self.frame_size) if self.frame_size else None,
            "seconds": round(self.ended_at - self.connected_at, 3) if self.connected_at else 0.0,
            "cpu_s": round(time.process_time() - self.cpu_start, 3),
        }


def describe(description):
    return json.dumps({"type": description.type, "sdp": description.sdp})


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
        try:
            message = await asyncio.wait_for(self.inbox.get(), timeout)
        except asyncio.TimeoutError:
            return None
        if message["type"] in ("_stop", "_closed"):
            raise Stop(message.get("reason", "the server closed the connection"))
        if message["type"] in ("kicked", "user_sig_expired"):
            raise Stop(f"server sent {message['type']}")
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
                    if self.args.answer:
                        await self.answer_calls()
                        return 0
                    return await self.place_calls(contacts)
                finally:
                    reader.cancel()
        except Stop as stop:
            if self.stopping:
                return 0
            emit("error", error=str(stop))
        except (OSError, WebSocketException, asyncio.TimeoutError) as error:
            emit("error", error=f"cannot reach {self.args.server}: {error or type(error).__name__}")
        return 1

    async def log_in(self):
        await self.send("login", version=PROTOCOL_VERSION, user_id=self.args.user, user_sig=self.args.user_sig)
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
                await self.take_call(message)
            elif message["type"] == "sdp":
                self.early_offers[message["call_id"]] = message["description"]
            else:
                self.note(message)

    async def take_call(self, invitation):
        call_id = invitation["call_id"]
        call = Call(call_id, invitation["caller"], "callee", self.args.resolution)
        try:
            await self.send("accept", call_id=call_id)
            call.accepted_at = time.monotonic()
            if call_id in self.early_offers:
                await self.send_answer(call, self.early_offers.pop(call_id))
            while True:
                message = await self.next_message(0.25)
                if message is None:
                    pass
                elif message.get("call_id") != call_id:
                    if message["type"] == "invited":
                        await self.send("line_busy", call_id=message["call_id"])
                    else:
                        self.note(message)
                elif message["type"] == "sdp":
                    await self.send_answer(call, message["description"])
                elif message["type"] in END_OF_CALL:
                    break
                else:
                    self.note(message)
                if call.state == "failed" or (
                    call.connected_at is None and time.monotonic() - call.accepted_at > CONNECT_TIMEOUT_S
                ):
                    emit("error", error=f"media did not connect (state {call.state})", call_id=call_id)
                    await self.send("hangup", call_id=call_id)
                    break
        except Stop:
            await self.hang_up_quietly(call_id)
            raise
        finally:
            await call.close()
            emit("call_done", **call.report())

    async def send_answer(self, call, description):
        answer = await call.answer(description)
        if answer is not None:
            await self.send("sdp", call_id=call.call_id, to=call.remote, description=answer)

    async def hang_up_quietly(self, call_id):
        try:
            await self.send("hangup", call_id=call_id)
        except ConnectionClosed:
            pass

    async def wait_until_online(self, user, contacts):
        deadline = time.monotonic() + 10
        while not any(c.get("user_id") == user and c.get("online") for c in contacts):
            if time.monotonic() > deadline:
                return
            await self.send("contacts")
            message = await self.next_message(0.25)
            if message and message["type"] == "contacts":
                contacts = message.get("contacts", [])
            elif message:
                self.note(message)
            await asyncio.sleep(0.1)

    async def place_calls(self, contacts):
        await self.wait_until_online(self.args.call, contacts)
        failures = 0
        for _ in range(self.args.calls):
            if not await self.place_call():
                failures += 1
        return 1 if failures else 0

    async def place_call(self):
        callee = self.args.call
        call_id = f"{self.args.user}-{uuid.uuid4().hex[:12]}"
        call = Call(call_id, callee, "caller", self.args.resolution)
        ok, in_call, started = False, True, time.monotonic()
        try:
            offer = await call.offer()
            await self.send("invite", call_id=call_id, callees=[callee], media="video", group=False, timeout_secs=30)
            await self.send("sdp", call_id=call_id, to=callee, description=offer)
            while True:
                message = await self.next_message(0.1)
                now = time.monotonic()
                if message is None:
                    pass
                elif message.get("call_id") != call_id:
                    if message["type"] == "invited":
                        await self.send("line_busy", call_id=message["call_id"])
                    else:
                        self.note(message)
                elif message["type"] == "accepted":
                    call.accepted_at = now
                elif message["type"] == "sdp":
                    await call.take_answer(message["description"])
                elif message["type"] == "invite_delivered" and message.get("offline"):
                    emit("error", error=f"{callee} is offline", call_id=call_id)
                    in_call = False
                    break
                elif message["type"] in END_OF_CALL:
                    emit("error", error=f"call ended early: {message['type']}", call_id=call_id)
                    in_call = False
                    break
                elif message["type"] == "error":
                    self.note(message)
                    break
                if call.connected_at is not None and now - call.connected_at >= self.args.seconds:
                    ok = True
                    break
                # Ringing lasts up to 30 s; media then has CONNECT_TIMEOUT_S to connect.
                limit = (call.accepted_at or started + 30) + CONNECT_TIMEOUT_S
                if call.state == "failed" or (call.connected_at is None and now > limit):
                    emit("error", error=f"media did not connect (state {call.state})", call_id=call_id)
                    break
            if in_call:
                await self.send("hangup", call_id=call_id)
        except Stop:
            await self.hang_up_quietly(call_id)
            raise
        finally:
            await call.close()
            if call.accepted_at is not None:
                emit("call_done", **call.report())
        return ok


def watch_stdin(loop, peer):
    def read_until_closed():
        # os.read, not sys.stdin: a daemon thread blocked in a buffered read breaks shutdown.
        try:
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


def parse_args():
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
    return parser.parse_args()


def main():
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
