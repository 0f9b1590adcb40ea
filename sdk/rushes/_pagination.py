"""Auto-paginating iterators over ``{items, total, limit, offset}`` lists."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Generic, TypeVar

from rushes._base import Op
from rushes.types import Page

if TYPE_CHECKING:
    from rushes._client import AsyncRequester, SyncRequester

T = TypeVar("T")


def _next_offset(page: Page[T]) -> int | None:
    following = page.offset + len(page.items)
    return following if page.items and following < page.total else None


class SyncPager(Generic[T]):
    """Iterate to get every item, fetching pages as needed; ``first_page()`` for one page only."""

    def __init__(self, requester: SyncRequester, op: Op[Page[T]]) -> None:
        self._requester, self._op = requester, op

    def first_page(self) -> Page[T]:
        return self._requester.execute(self._op)

    def pages(self) -> Iterator[Page[T]]:
        op: Op[Page[T]] | None = self._op
        while op is not None:
            page = self._requester.execute(op)
            yield page
            offset = _next_offset(page)
            op = None if offset is None else op.with_params(offset=offset)

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.items


class AsyncPager(Generic[T]):
    """``async for`` gets every item, fetching pages as needed; ``await first_page()`` for one page."""

    def __init__(self, requester: AsyncRequester, op: Op[Page[T]]) -> None:
        self._requester, self._op = requester, op

    async def first_page(self) -> Page[T]:
        return await self._requester.execute(self._op)

    async def pages(self) -> AsyncIterator[Page[T]]:
        op: Op[Page[T]] | None = self._op
        while op is not None:
            page = await self._requester.execute(op)
            yield page
            offset = _next_offset(page)
            op = None if offset is None else op.with_params(offset=offset)

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.items:
                yield item
