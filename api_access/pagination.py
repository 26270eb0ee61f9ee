"""Pagination shared by the API lists."""

import hashlib
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

# Query parameters that choose a page of a list, not which rows are in it.
_PAGING_PARAMS = frozenset({"page", "page_size", "format"})


def _positive_int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValidationError(
            {name: [f"Expected a whole number of 1 or more, got {raw!r}."]}
        )
    return value


class StandardPagination(PageNumberPagination):
    """``?page=N&page_size=M``; 50 by default, at most 500 per page (larger
    sizes are served as 500).

    A page is read with one query for ``page_size + 1`` rows: the extra row says
    whether there is a next page, so ``next`` is exact on every request. The
    total ``count`` is cached per filter combination for ``API_COUNT_CACHE_S``
    seconds (settings.py says why); a count the page itself proves too low (rows
    past it) is corrected, and a list that fits on its page is counted exactly.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(
        self, queryset: QuerySet, request: Request, view: Any = None
    ) -> list:
        self.request = request
        size = min(
            _positive_int(request, self.page_size_query_param, self.page_size),
            self.max_page_size,
        )
        self.number = _positive_int(request, self.page_query_param, 1)
        offset = (self.number - 1) * size

        rows = list(queryset[offset : offset + size + 1])
        self.has_next = len(rows) > size
        rows = rows[:size]
        if not rows and self.number > 1:
            raise NotFound(f"Invalid page: page {self.number} is past the last page.")

        seen = offset + len(rows)
        if self.number == 1 and not self.has_next:
            self.count = seen
        else:
            self.count = max(self._cached_count(queryset, request, view), seen)
            if self.has_next and self.count <= seen:
                self.count = seen + 1
        return rows

    def _cached_count(self, queryset: QuerySet, request: Request, view: Any) -> int:
        lifetime = settings.API_COUNT_CACHE_S
        if not lifetime:
            return queryset.count()
        filters = sorted(
            (name, value)
            for name, values in request.query_params.lists()
            if name not in _PAGING_PARAMS
            for value in values
        )
        digest = hashlib.sha256(repr(filters).encode()).hexdigest()[:32]
        key = f"api-count:{type(view).__name__}:{request.path}:{digest}"
        count = cache.get(key)
        if count is None:
            count = queryset.count()
            cache.set(key, count, lifetime)
        return count

    def get_next_link(self) -> str | None:
        if not self.has_next:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.page_query_param, self.number + 1)

    def get_previous_link(self) -> str | None:
        if self.number == 1:
            return None
        url = self.request.build_absolute_uri()
        if self.number == 2:
            return remove_query_param(url, self.page_query_param)
        return replace_query_param(url, self.page_query_param, self.number - 1)

    def get_paginated_response(self, data: Sequence) -> Response:
        return Response(
            {
                "count": self.count,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )


class MeterSampleCursorPagination(CursorPagination):
    """Meter samples in time order with an opaque cursor: stable while a live
    session keeps adding samples, and no COUNT over millions of rows."""

    page_size = 500
    page_size_query_param = "page_size"
    max_page_size = 5000
    ordering = ("timestamp", "id")


class StatusEventCursorPagination(CursorPagination):
    """Status history, newest first, with an opaque cursor."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = ("-timestamp", "-id")
