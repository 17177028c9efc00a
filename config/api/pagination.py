"""Cursor pagination for the lists a phone syncs: stable under inserts, bounded pages."""

from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = "-id"
