"""Recognising a file from its first bytes, and cheap structural checks.

PyAV only says "invalid data" when it cannot open a file; the magic bytes tell a damaged
MP4 (``CorruptMediaError``) from an AVI we do not accept (``UnsupportedMediaError``) and
from something that is not media at all (``NotMediaError``). They also give the short
container names FFmpeg does not: MOV vs MP4 (the ``ftyp`` brand) and Matroska vs WebM
(the EBML DocType).

The structural checks catch truncation that the demuxers tolerate silently: an ISO-BMFF
box or a Matroska segment that claims more bytes than the file holds.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, Final

HEAD_BYTES: Final = 4096

_BMFF_TOP_LEVEL: Final = frozenset(
    {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"styp", b"moof"}
)
_HEIF_BRANDS: Final = frozenset({b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"})
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})

_EBML_MAGIC: Final = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE: Final = 0x4282
_MKV_SEGMENT: Final = 0x18538067

#: Family of every label ``sniff`` can return that the service accepts.
ISOBMFF_LABELS: Final = frozenset({"mov", "mp4"})
EBML_LABELS: Final = frozenset({"matroska", "webm"})


def read_head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(HEAD_BYTES)


def sniff(head: bytes) -> str | None:
    """A short format name for the file whose first bytes are ``head``, or ``None``.

    Accepted formats: mov, mp4, matroska, webm, png, jpeg, tiff. Others are named so
    that a refusal can say what the file is: 3gp, heif, avif, cr3, avi, wav, webp,
    aiff, mxf, mpegts, mpeg, flv, gif, ogg, flac, mp3, asf, bmp.
    """
    if len(head) >= 8 and head[4:8] in _BMFF_TOP_LEVEL:
        return _bmff_label(head)
    if head.startswith(_EBML_MAGIC):
        doctype = _ebml_doctype(head)
        return "webm" if doctype == "webm" else "matroska"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith(b"RIFF") and len(head) >= 12:
        riff = {b"AVI ": "avi", b"WAVE": "wav", b"WEBP": "webp"}
        return riff.get(head[8:12], "riff")
    if head.startswith(b"FORM") and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head.startswith(b"\x06\x0e\x2b\x34\x02\x05\x01\x01\x0d\x01\x02"):
        return "mxf"
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return "mpegts"
    prefixes: dict[bytes, str] = {
        b"\x00\x00\x01\xba": "mpeg",
        b"FLV\x01": "flv",
        b"GIF87a": "gif",
        b"GIF89a": "gif",
        b"OggS": "ogg",
        b"fLaC": "flac",
        b"ID3": "mp3",
        b"\x30\x26\xb2\x75\x8e\x66\xcf\x11": "asf",
        b"BM": "bmp",
    }
    for prefix, label in prefixes.items():
        if head.startswith(prefix):
            return label
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
        return "mp3"  # an MPEG audio frame header
    return None


def _bmff_label(head: bytes) -> str:
    if head[4:8] != b"ftyp":
        return "mov"  # QuickTime files may start with moov, mdat or wide and no ftyp
    size = struct.unpack(">I", head[0:4])[0]
    brands = [head[8:12]] + [head[i : i + 4] for i in range(16, min(size, len(head)) - 3, 4)]
    major = brands[0]
    if major == b"qt  ":
        return "mov"
    if major[:3] in (b"3gp", b"3g2", b"3ge", b"3gg"):
        return "3gp"
    if major == b"crx ":
        return "cr3"
    if major in _AVIF_BRANDS:
        return "avif"
    if major in _HEIF_BRANDS:
        return "heif"
    return "mp4"


def _vint(buf: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int, bool] | None:
    """An EBML variable-length integer at ``pos``: (value, next pos, all-ones)."""
    if pos >= len(buf):
        return None
    first = buf[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8 or pos + length > len(buf):
        return None
    value = first if keep_marker else first & ((0x80 >> (length - 1)) - 1)
    all_ones = value == (0x80 >> (length - 1)) - 1
    for b in buf[pos + 1 : pos + length]:
        value = (value << 8) | b
        all_ones = all_ones and b == 0xFF
    return value, pos + length, all_ones


def _ebml_element(buf: bytes, pos: int) -> tuple[int, int, int, bool] | None:
    """(id, data start, data size, size unknown) of the element at ``pos``."""
    eid = _vint(buf, pos, keep_marker=True)
    if eid is None:
        return None
    size = _vint(buf, eid[1], keep_marker=False)
    if size is None:
        return None
    return eid[0], size[1], size[0], size[2]


def _ebml_doctype(head: bytes) -> str | None:
    header = _ebml_element(head, 0)
    if header is None:
        return None
    _, pos, size, _ = header
    end = min(pos + size, len(head))
    while pos < end:
        child = _ebml_element(head, pos)
        if child is None:
            return None
        eid, data, csize, _ = child
        if eid == _EBML_DOCTYPE:
            return head[data : data + csize].rstrip(b"\x00").decode("ascii", "replace")
        pos = data + csize
    return None


def truncation(path: Path, label: str) -> str | None:
    """Why ``path`` looks cut short, or ``None``. Only reads a few bytes per top-level box."""
    size = path.stat().st_size
    with path.open("rb") as f:
        if label in ISOBMFF_LABELS:
            return _bmff_truncation(f, size)
        if label in EBML_LABELS:
            return _ebml_truncation(f, size)
    return None


def _bmff_truncation(f: BinaryIO, file_size: int) -> str | None:
    pos = 0
    for _ in range(1_000_000):
        if pos + 8 > file_size:
            return None
        f.seek(pos)
        header = f.read(16)
        box_size, box_type = struct.unpack(">I4s", header[:8])
        if box_size == 1 and len(header) == 16:
            box_size = struct.unpack(">Q", header[8:16])[0]
        elif box_size == 0:
            return None  # the last box, running to the end of the file
        if box_size < 8:
            return None  # not a box: leave judging the rest to the demuxer
        if pos + box_size > file_size:
            name = box_type.decode("latin-1")
            return (
                f"the file is truncated: its '{name}' box needs {pos + box_size} bytes "
                f"but the file has {file_size}; upload it again"
            )
        pos += box_size
    return None


def _ebml_truncation(f: BinaryIO, file_size: int) -> str | None:
    head = f.read(HEAD_BYTES)
    header = _ebml_element(head, 0)
    if header is None:
        return None
    segment = _ebml_element(head, header[1] + header[2])
    if segment is None or segment[0] != _MKV_SEGMENT or segment[3]:
        return None  # no segment where expected, or a live recording with unknown size
    needed = segment[1] + segment[2]
    if needed > file_size:
        return (
            f"the file is truncated: its Matroska segment needs {needed} bytes "
            f"but the file has {file_size}; upload it again"
        )
    return None
