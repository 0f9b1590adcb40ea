"""FFmpeg's names for the colour enums (ITU-T H.273 code points), as ffprobe prints them.

PyAV exposes these fields as integers only; the names match ``av_color_*_name``.
"Unspecified" and reserved values map to ``None``.
"""

from __future__ import annotations

from typing import Final

PRIMARIES: Final[dict[int, str]] = {
    1: "bt709",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "ebu3213",
}

TRANSFER: Final[dict[int, str]] = {
    1: "bt709",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    9: "log100",
    10: "log316",
    11: "iec61966-2-4",
    12: "bt1361e",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}

MATRIX: Final[dict[int, str]] = {
    0: "gbr",
    1: "bt709",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "ycgco",
    9: "bt2020nc",
    10: "bt2020c",
    11: "smpte2085",
    12: "chroma-derived-nc",
    13: "chroma-derived-c",
    14: "ictcp",
    15: "ipt-c2",
    16: "ycgco-re",
    17: "ycgco-ro",
}

RANGE: Final[dict[int, str]] = {1: "tv", 2: "pc"}


def name(table: dict[int, str], *values: int | None) -> str | None:
    """The name of the first value that ``table`` knows, else ``None``."""
    for value in values:
        if value is not None and value in table:
            return table[value]
    return None
