"""Ogg pages, cheaply: write them for the speaker, split them for the listeners.

An Ogg stream is a run of pages: a 27-byte header ("OggS", version, flags, granule
position, serial, page number, CRC), a segment table, and the body. A packet is a run of
segments ending with one shorter than 255 bytes; it may continue on the next page. The
granule position of a page belongs to the last packet that *ends* on it (-1: none does).

Parsing here reads headers and segment tables only: no CRC check and no decoding, so a
thin listener can follow a stream on its real-time path at the cost of a few slices per
page. (A corrupted page would be caught by the decoder of a thick listener.)

Opus in Ogg (RFC 7845): the first page holds ``OpusHead`` (its pre-skip: samples the
decoder drops at the start), the second ``OpusTags``; the granule position counts 48 kHz
samples *including* the pre-skip. :func:`packet_samples` reads a packet's duration from
its TOC byte, so the end granule of every packet on a page is known from the page's.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

CAPTURE = b"OggS"
CONTINUED, BOS, EOS = 0x01, 0x02, 0x04
NO_GRANULE = -1
_HEADER = struct.Struct("<4sBBqIIIB")   # capture, version, flags, granule, serial, page, crc, segments
MAX_PAGE = 27 + 255 + 255 * 255


def _crc_table() -> tuple[int, ...]:
    # Ogg's CRC-32: polynomial 0x04c11db7, not reflected, initial value 0, no final xor
    # (not zlib's crc32, which is reflected).
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return tuple(table)


_CRC = _crc_table()


def crc32(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[(crc >> 24) ^ b]
    return crc


def page(body_packets: list[bytes], *, serial: int, page_no: int, granule: int,
         flags: int = 0) -> bytes:
    """One page holding whole packets (each ends on it). ``granule`` is that of the last."""
    lacing = bytearray()
    for p in body_packets:
        lacing += b"\xff" * (len(p) // 255) + bytes((len(p) % 255,))
    if len(lacing) > 255:
        raise ValueError(f"{sum(map(len, body_packets))} bytes of packets need {len(lacing)} "
                         "segments; a page holds at most 255")
    head = _HEADER.pack(CAPTURE, 0, flags, granule, serial, page_no, 0, len(lacing))
    raw = bytearray(head + lacing + b"".join(body_packets))
    struct.pack_into("<I", raw, 22, crc32(raw))
    return bytes(raw)


@dataclass(frozen=True)
class Page:
    flags: int
    granule: int
    serial: int
    page_no: int
    packets: tuple[bytes, ...]   # packets that end on this page (a continued one whole)
    size: int                    # bytes of the page as received

    @property
    def bos(self) -> bool:
        return bool(self.flags & BOS)


@dataclass
class PageReader:
    """Splits a byte stream, fed in arbitrary chunks, into pages and whole packets.

    Bytes before a page capture pattern (a join into the middle of a page, or garbage)
    are skipped and counted in ``skipped``. A packet continued from a page never seen is
    dropped (``partial_dropped``), as a decoder joining mid-stream would."""

    skipped: int = 0
    partial_dropped: int = 0
    _buf: bytearray = field(default_factory=bytearray, repr=False)
    _partial: dict[int, bytearray] = field(default_factory=dict, repr=False)

    def feed(self, data: bytes) -> Iterator[Page]:
        self._buf += data
        buf = self._buf
        at = 0
        while True:
            if buf[at:at + 4] != CAPTURE:
                found = buf.find(CAPTURE, at)
                if found < 0:
                    keep = max(at, len(buf) - 3)  # a capture pattern may straddle chunks
                    self.skipped += keep - at
                    at = keep
                    break
                self.skipped += found - at
                at = found
            if len(buf) - at < 27:
                break
            _, version, flags, granule, serial, page_no, _, nseg = _HEADER.unpack_from(buf, at)
            if version != 0:
                self.skipped += 1
                at += 1
                continue
            if len(buf) - at < 27 + nseg:
                break
            lacing = buf[at + 27:at + 27 + nseg]
            end = at + 27 + nseg + sum(lacing)
            if len(buf) < end:
                break
            yield Page(flags, granule, serial, page_no,
                       self._packets(serial, flags, lacing, buf, at + 27 + nseg), end - at)
            at = end
        del buf[:at]

    def _packets(self, serial: int, flags: int, lacing: bytes, buf: bytearray,
                 at: int) -> tuple[bytes, ...]:
        partial = self._partial.pop(serial, None)
        # A continued page whose start we never saw: its first packet is dropped. A page
        # that is not continued discards a continuation that never came.
        dropping = bool(flags & CONTINUED) and partial is None
        cur = partial if flags & CONTINUED and partial is not None else bytearray()
        out = []
        for n in lacing:
            cur += buf[at:at + n]
            at += n
            if n < 255:
                if dropping:
                    self.partial_dropped += 1
                    dropping = False
                else:
                    out.append(bytes(cur))
                cur = bytearray()
        if lacing and lacing[-1] == 255 and not dropping:
            self._partial[serial] = cur
        return tuple(out)


# --- Opus in Ogg ----------------------------------------------------------------------

OPUS_HEAD, OPUS_TAGS = b"OpusHead", b"OpusTags"
_FRAME_SAMPLES_48K = (  # by TOC config (RFC 6716, 3.1): SILK, hybrid, CELT
    [480, 960, 1920, 2880] * 3 + [480, 960] * 2 + [120, 240, 480, 960] * 4)


def packet_samples(packet: bytes) -> int:
    """Duration of an Opus packet in 48 kHz samples, from its TOC byte (and frame count);
    0 for an empty or malformed packet."""
    if not packet:
        return 0
    toc = packet[0]
    per_frame = _FRAME_SAMPLES_48K[toc >> 3]
    code = toc & 0x03
    if code == 0:
        return per_frame
    if code in (1, 2):
        return 2 * per_frame
    if len(packet) < 2:
        return 0
    return (packet[1] & 0x3F) * per_frame


def opus_head(channels: int = 1, pre_skip: int = 312, input_rate: int = 48_000) -> bytes:
    """The OpusHead packet (RFC 7845, 5.1), mapping family 0."""
    return OPUS_HEAD + struct.pack("<BBHIhB", 1, channels, pre_skip, input_rate, 0, 0)


def parse_opus_head(packet: bytes) -> int:
    """The pre-skip (samples) of an OpusHead packet; ValueError if it is not one."""
    if len(packet) < 19 or not packet.startswith(OPUS_HEAD):
        raise ValueError("not an OpusHead packet")
    return struct.unpack_from("<H", packet, 10)[0]


def opus_tags(vendor: str = "chaos", comments: tuple[str, ...] = ()) -> bytes:
    v = vendor.encode()
    out = OPUS_TAGS + struct.pack("<I", len(v)) + v + struct.pack("<I", len(comments))
    for c in comments:
        b = c.encode()
        out += struct.pack("<I", len(b)) + b
    return out


def codec_of(first_packet: bytes) -> str:
    """The codec of a logical stream, from its first (BOS) packet."""
    if first_packet.startswith(OPUS_HEAD):
        return "opus"
    if first_packet[:7] == b"\x01vorbis":
        return "vorbis"
    if first_packet[:5] == b"\x7fFLAC":
        return "flac"
    return "unknown"


def end_granules(p: Page, samples: list[int]) -> list[int | None]:
    """The end granule position of each packet of page ``p``, given their durations: the
    page's granule is the last packet's; those before it end that much earlier. None for
    every packet when the page has no granule."""
    if p.granule == NO_GRANULE or not samples:
        return [None] * len(samples)
    out, g = [], p.granule
    for n in reversed(samples):
        out.append(g)
        g -= n
    return out[::-1]
