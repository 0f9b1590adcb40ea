"""Resources are written once, generic over the requester that runs them.

A resource method builds an :class:`Op` (no I/O). The ``endpoint`` descriptor turns it into
a call that returns the result on a :class:`~rushes.Client` and an awaitable on an
:class:`~rushes.AsyncClient`; mypy sees both signatures precisely::

    class Datasets(Resource[R]):
        @endpoint
        def get(self, dataset_id: str) -> Op[Dataset]:
            return Op("GET", f"/v1/datasets/{dataset_id}", Dataset.from_json)

    client.datasets.get(id)              # Dataset
    await async_client.datasets.get(id)  # Dataset
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload
from urllib.parse import quote

from rushes.types import Page

if TYPE_CHECKING:
    from rushes._client import AsyncRequester, SyncRequester
    from rushes._pagination import AsyncPager, SyncPager

from rushes._base import BaseRequester, Op

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R", bound=BaseRequester)


class Resource(Generic[R]):
    def __init__(self, requester: R) -> None:
        self._requester = requester


def path_segment(value: object) -> str:
    """An id made safe for a URL path."""
    return quote(str(value), safe="")


class endpoint(Generic[P, T]):
    """A method that returns an ``Op[T]`` becomes ``(...) -> T`` or ``(...) -> Awaitable[T]``."""

    def __init__(self, build: Callable[Concatenate[Any, P], Op[T]]) -> None:
        self._build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> endpoint[P, T]: ...
    @overload
    def __get__(self, obj: Resource[SyncRequester], owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: Resource[AsyncRequester], owner: type[Any]) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, obj: Resource[Any] | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        build, requester = self._build, obj._requester

        @functools.wraps(build)
        def call(*args: Any, **kwargs: Any) -> Any:
            return requester.execute(build(obj, *args, **kwargs))

        return call


class paginated(Generic[P, T]):
    """A method that returns the first page's ``Op[Page[T]]`` becomes an auto-paginating list call."""

    def __init__(self, build: Callable[Concatenate[Any, P], Op[Page[T]]]) -> None:
        self._build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> paginated[P, T]: ...
    @overload
    def __get__(self, obj: Resource[SyncRequester], owner: type[Any]) -> Callable[P, SyncPager[T]]: ...
    @overload
    def __get__(self, obj: Resource[AsyncRequester], owner: type[Any]) -> Callable[P, AsyncPager[T]]: ...
    def __get__(self, obj: Resource[Any] | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        build, requester = self._build, obj._requester

        @functools.wraps(build)
        def call(*args: Any, **kwargs: Any) -> Any:
            return requester.paginate(build(obj, *args, **kwargs))

        return call


class dual(Generic[P, T]):
    """For work that is more than one call (e.g. uploads): one implementation per kind of client."""

    def __init__(
        self,
        sync: Callable[Concatenate[Any, P], T],
        async_: Callable[Concatenate[Any, P], Awaitable[T]],
    ) -> None:
        self._sync, self._async = sync, async_
        self.__doc__ = sync.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> dual[P, T]: ...
    @overload
    def __get__(self, obj: Resource[SyncRequester], owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: Resource[AsyncRequester], owner: type[Any]) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, obj: Resource[Any] | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        implementation = self._async if obj._requester.is_async else self._sync
        return functools.partial(implementation, obj)


def page_of(item: Callable[[Any], T]) -> Callable[[Any], Page[T]]:
    """The cast for a ``{items, total, limit, offset}`` answer."""

    def cast(data: Any) -> Page[T]:
        return Page(
            items=[item(i) for i in data["items"]],
            total=int(data["total"]),
            limit=int(data["limit"]),
            offset=int(data["offset"]),
        )

    return cast


def list_op(path: str, item: Callable[[Any], T], limit: int | None, **params: Any) -> Op[Page[T]]:
    return Op("GET", path, page_of(item), params={"limit": limit, **params})
