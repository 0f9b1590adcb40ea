"""The ``Range`` header: the one range it asks for, the whole object, or 416."""

from __future__ import annotations

import pytest

from core.errors import RangeNotSatisfiable
from service.downloads import ByteRange, requested_range

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 100)),
        ("bytes=500-", ByteRange(500, 500)),
        ("bytes=-100", ByteRange(900, 100)),
        ("bytes=-5000", ByteRange(0, SIZE)),  # a suffix longer than the object is the whole of it
        ("bytes=990-5000", ByteRange(990, 10)),  # an end past the last byte stops at it
        ("bytes=999-999", ByteRange(999, 1)),
        ("BYTES=0-0", ByteRange(0, 1)),
        (" bytes=10-19 ", ByteRange(10, 10)),
    ],
)
def test_one_range_is_what_it_asks_for(header: str, expected: ByteRange) -> None:
    assert requested_range(header, SIZE) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes=",
        "bytes=-",
        "bytes=5-1",
        "bytes=0-1,5-9",
        "items=0-9",
        "bytes=a-b",
        "bytes=+1-2",
        "0-9",
    ],
)
def test_what_is_not_one_well_formed_range_gets_the_whole_object(header: str | None) -> None:
    assert requested_range(header, SIZE) is None


@pytest.mark.parametrize(
    ("header", "size"),
    [("bytes=1000-", SIZE), ("bytes=5000-6000", SIZE), ("bytes=-0", SIZE), ("bytes=-10", 0), ("bytes=0-", 0)],
)
def test_a_range_outside_the_object_is_refused_with_its_size(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as refused:
        requested_range(header, size)
    assert refused.value.status == 416
    assert refused.value.headers == {"content-range": f"bytes */{size}"}


def test_content_range_names_the_last_byte() -> None:
    assert ByteRange(10, 10).content_range(SIZE) == "bytes 10-19/1000"
