"""Pagination shared by the API lists."""

from rest_framework.pagination import CursorPagination, PageNumberPagination


class StandardPagination(PageNumberPagination):
    """``?page=N&page_size=M``; 50 by default, at most 500 per page."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


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
