"""Checking that a video decodes, without decoding all of it.

One pass demuxes every packet of the video stream (no decoding): it counts them, notes
where each keyframe group (GOP) starts, and measures the stream's span. While it passes,
it decodes the first GOP. Then it seeks to the last GOP and decodes it to the end of the
file, and does the same for a few GOPs spread through the middle, as the decode budget
allows. A GOP passes when the decoder raises nothing, flags no frame as corrupt, and
returns a frame for every packet that should show one.

Corruption inside a GOP that was not decoded is not found: a long file is sampled, not
decoded end to end. Truncation is found wherever it is, by the packet count, the span
and the container's structure (see ``service.media.sniff``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

import av.error
from av.container import InputContainer
from av.packet import Packet
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from service.media.errors import CorruptMediaError

#: Pixels decoded for each of: the first GOP, the last GOP, the sampled middle GOPs.
#: 144 HD frames (36 UHD frames) each; a 1 GiB file probes in a few seconds at most.
DEFAULT_DECODE_BUDGET_PIXELS: Final = 1920 * 1080 * 144
#: At most this many middle GOPs are decoded (each costs a seek).
MAX_SAMPLED_GOPS: Final = 16


@dataclass(slots=True)
class Gop:
    #: Timestamp (pts, else dts) of the keyframe that starts the group; None if unknown.
    key_ts: int | None
    packets: int = 0


@dataclass(slots=True)
class Scan:
    """What the demux pass saw."""

    packets: int = 0
    discarded: int = 0
    gops: list[Gop] = field(default_factory=list)
    #: Earliest pts and latest pts + duration of shown packets, in stream time base.
    start: int | None = None
    end: int | None = None
    first_frame: VideoFrame | None = None
    decoded_frames: int = 0


def _ts(packet: Packet[VideoStream]) -> int | None:
    return packet.pts if packet.pts is not None else packet.dts


class _GopDecoder:
    """Feeds one GOP's packets to the decoder and checks what comes out."""

    def __init__(self, stream: VideoStream, key_ts: int | None, cap: int) -> None:
        self.stream = stream
        self.key_ts = key_ts
        self.cap = cap
        self.fed = 0
        self.expected = 0
        self.decoded = 0
        self.first: VideoFrame | None = None

    @property
    def full(self) -> bool:
        return self.fed >= self.cap

    def feed(self, packet: Packet[VideoStream]) -> None:
        ts = _ts(packet)
        # Leading pictures (shown before the keyframe, e.g. RASL after an HEVC CRA) cannot
        # be decoded from this keyframe on and are dropped by the decoder: don't expect them.
        leading = self.key_ts is None or (ts is not None and ts < self.key_ts)
        if not packet.is_discard and not leading:
            self.expected += 1
        self.fed += 1
        self._collect(self._decode(packet))

    def finish(self) -> int:
        """Flush the decoder; return the number of frames the GOP produced."""
        self._collect(self._decode(None))
        if self.decoded < self.expected:
            raise CorruptMediaError(
                f"the file is damaged: a group of {self.expected} frames decoded to only "
                f"{self.decoded}; export or copy it again"
            )
        return self.decoded

    def _decode(self, packet: Packet[VideoStream] | None) -> list[VideoFrame]:
        try:
            return self.stream.decode(packet)
        except av.error.FFmpegError as exc:
            raise CorruptMediaError(
                f"the file is damaged: decoding it failed ({exc.strerror}); export or copy it again"
            ) from exc

    def _collect(self, frames: Iterable[VideoFrame]) -> None:
        for frame in frames:
            if frame.is_corrupt:
                raise CorruptMediaError(
                    "the file is damaged: a frame decoded with errors; export or copy it again"
                )
            self.decoded += 1
            if self.first is None:
                self.first = frame


def _packets(container: InputContainer, stream: VideoStream) -> Iterator[Packet[VideoStream]]:
    try:
        for packet in container.demux(stream):
            if packet.size:  # empty packets only flush
                yield packet
    except av.error.FFmpegError as exc:
        raise CorruptMediaError(
            f"the file is damaged: reading it failed ({exc.strerror}); export or copy it again"
        ) from exc


def frame_cap(stream: VideoStream, budget_pixels: int) -> int:
    pixels = max(1, stream.width * stream.height)
    return max(1, budget_pixels // pixels)


def scan(container: InputContainer, stream: VideoStream, budget_pixels: int) -> Scan:
    """Demux every packet; decode the first GOP (up to the budget)."""
    result = Scan()
    decoder: _GopDecoder | None = None
    cap = frame_cap(stream, budget_pixels)
    for packet in _packets(container, stream):
        if packet.is_corrupt:
            raise CorruptMediaError(
                f"the file is truncated or damaged: frame {result.packets + 1} is incomplete; upload it again"
            )
        ts = _ts(packet)
        if packet.is_keyframe or not result.gops:
            if result.gops and decoder is not None:
                _finish_first(result, decoder)
                decoder = None
            result.gops.append(Gop(key_ts=ts if packet.is_keyframe else None))
            if len(result.gops) == 1:
                decoder = _GopDecoder(stream, result.gops[0].key_ts, cap)
        result.gops[-1].packets += 1
        result.packets += 1
        if packet.is_discard:
            result.discarded += 1
        elif packet.pts is not None:
            end = packet.pts + (packet.duration or 0)
            result.start = packet.pts if result.start is None else min(result.start, packet.pts)
            result.end = end if result.end is None else max(result.end, end)
        if decoder is not None:
            decoder.feed(packet)
            if decoder.full:
                _finish_first(result, decoder)
                decoder = None
    if decoder is not None:
        _finish_first(result, decoder)
    if result.first_frame is None:
        raise CorruptMediaError("the file has no frame that can be decoded; export or copy it again")
    return result


def _finish_first(result: Scan, decoder: _GopDecoder) -> None:
    result.decoded_frames += decoder.finish()
    if result.first_frame is None:
        result.first_frame = decoder.first


def gops_to_check(gops: list[Gop], cap: int) -> list[int]:
    """Indexes of the GOPs to decode after the scan: the last, then a spread of others."""
    if len(gops) < 2:
        return []
    chosen = [len(gops) - 1]
    middle = len(gops) - 2  # GOPs 1 .. len-2
    budget = cap
    for fraction in _spread():
        if len(chosen) > MAX_SAMPLED_GOPS or middle == 0 or len(chosen) - 1 >= middle:
            break
        index = 1 + min(middle - 1, int(fraction * middle))
        if index in chosen:
            continue
        cost = min(gops[index].packets, cap)
        if cost > budget:
            break
        budget -= cost
        chosen.append(index)
    return chosen


def _spread() -> Iterator[float]:
    """1/2, 1/4, 3/4, 1/8, 3/8, ...: points that fill [0, 1) ever more finely."""
    denominator = 2
    while denominator <= 1 << 12:
        for numerator in range(1, denominator, 2):
            yield numerator / denominator
        denominator *= 2


def check_gop(container: InputContainer, stream: VideoStream, gop: Gop, cap: int) -> int:
    """Seek to ``gop`` and decode it (up to ``cap`` packets); return frames decoded."""
    if gop.key_ts is None:
        return 0
    try:
        container.seek(gop.key_ts, stream=stream, backward=True)
    except av.error.FFmpegError as exc:
        raise CorruptMediaError(
            f"the file is damaged: seeking in it failed ({exc.strerror}); export or copy it again"
        ) from exc
    decoder: _GopDecoder | None = None
    for packet in _packets(container, stream):
        if decoder is None:
            if not packet.is_keyframe:
                continue  # the seek landed on an earlier GOP: skip to ours
            ts = _ts(packet)
            if ts is None or ts > gop.key_ts:
                break  # passed it: the seek went wrong, which the scan has no reason to blame
            if ts < gop.key_ts:
                continue
            decoder = _GopDecoder(stream, gop.key_ts, min(cap, gop.packets))
        elif packet.is_keyframe:
            break
        if packet.is_corrupt:
            raise CorruptMediaError(
                "the file is truncated or damaged: a frame is incomplete; upload it again"
            )
        decoder.feed(packet)
        if decoder.full:
            break
    if decoder is None:
        return 0
    return decoder.finish()
