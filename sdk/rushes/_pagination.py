"""Auto-paginating iterators over ``{items, total, limit, offset}`` lists.

Pages after the first start after the last item seen (``starting_after=<its id>``), as
openai-python and stripe-python page: items created while a list is read are neither
repeated nor skipped, which offsets into a newest-first list cannot promise.

Each page is fetched before the one before it is handed out, so its cursor is an item the
caller has not seen yet: a loop that deletes what it reads never names a deleted item.

A server that ignored the cursor (or the offset) would answer the same page forever: a page
that would be followed by the very request that fetched it raises :class:`PagingError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Generic, TypeVar

from rushes._base import Op
from rushes._errors import PagingError
from rushes.types import Page

if TYPE_CHECKING:
    from rushes._client import AsyncRequester, SyncRequester

T = TypeVar("T")


def _next(op: Op[Page[T]], page: Page[T]) -> Op[Page[T]] | None:
    """The request for the page after ``page`` (fetched by ``op``); None when it was the last."""
    if len(page.items) < page.limit:
        return None
    last = getattr(page.items[-1], "id", None)
    if last is None:  # a list of items without ids pages by offset
        offset = page.offset + len(page.items)
        if offset >= page.total:
            return None
        following = op.with_params(offset=offset)
    else:
        # A cursor and an offset cannot go together: the cursor alone says where the page starts.
        params = {name: value for name, value in (op.params or {}).items() if name != "offset"}
        following = replace(op, params={**params, "starting_after": str(last)})
    if following.params == op.params:
        where = f"starting_after={last}" if last is not None else f"offset={page.offset + len(page.items)}"
        raise PagingError(
            f"GET {op.path} answered the same page again for {where}: the server ignored where the"
            " page should start, so reading on would never end. Stopped after the items seen so far."
        )
    return following


class SyncPager(Generic[T]):
    """Iterate to get every item, fetching pages as needed; ``first_page()`` for one page only."""

    def __init__(self, requester: SyncRequester, op: Op[Page[T]]) -> None:
        self._requester, self._op = requester, op

    def first_page(self) -> Page[T]:
        return self._requester.execute(self._op)

    def pages(self) -> Iterator[Page[T]]:
        op, page = self._op, self._requester.execute(self._op)
        while True:
            following = _next(op, page)
            ahead: Page[T] | None = None
            if following is not None:
                ahead = self._requester.execute(following)
            if page.items or op is self._op:  # a full last page is followed by an empty one
                yield page
            if following is None or ahead is None:
                return
            op, page = following, ahead

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
        op, page = self._op, await self._requester.execute(self._op)
        while True:
            following = _next(op, page)
            ahead: Page[T] | None = None
            if following is not None:
                ahead = await self._requester.execute(following)
            if page.items or op is self._op:  # a full last page is followed by an empty one
                yield page
            if following is None or ahead is None:
                return
            op, page = following, ahead

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.items:
                yield item
