"""Cursor pagination for the lists a phone syncs: stable under inserts, bounded pages."""

from __future__ import annotations

import base64
import binascii
import datetime
from urllib import parse

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.utils import timezone
from rest_framework import pagination, serializers

from core.api import errors
from core.api.errors import ApplicationError


class CursorPagination(pagination.CursorPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = "-id"

    def get_page_size(self, request) -> int | None:
        # DRF falls back to the default size for any page_size it cannot read; the schema says an
        # integer, so anything else is refused rather than silently ignored.
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None:
            try:
                int(raw)
            except ValueError:
                message = serializers.IntegerField.default_error_messages["invalid"]
                raise serializers.ValidationError({self.page_size_query_param: [message]}) from None
        return super().get_page_size(request)

    def is_first_page(self, request) -> bool:
        """Whether the request asks for the first page at the default size (one a cache can keep):
        no cursor, and no page size or the default one. A size it cannot read is not: the paging
        itself refuses it."""
        if request.query_params.get(self.cursor_query_param) is not None:
            return False
        try:
            return self.get_page_size(request) == self.page_size
        except serializers.ValidationError:
            return False

    def paginate_queryset(self, queryset, request, view=None):
        self.model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request) -> pagination.Cursor | None:
        """A cursor is only ever one this API handed out (a `next` or `previous` link). One that
        does not decode, carries anything but DRF's offset, direction and position, or whose
        position is not a value of the ordering's first column (text where the column holds numbers
        or moments, a number past the column's range) would reach the query and fail there, or
        quietly start over: it is `cursor_invalid` instead, whatever was tampered with."""
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        try:
            text = base64.b64decode(encoded.encode("ascii"), validate=True).decode("ascii")
            tokens = parse.parse_qs(text, keep_blank_values=True, strict_parsing=True)
            if set(tokens) - {"o", "r", "p"} or any(len(each) > 1 for each in tokens.values()):
                raise ValueError(text)
            offset = int(tokens.get("o", ["0"])[0])
            if offset < 0:
                raise ValueError(text)
            offset = min(offset, self.offset_cutoff)
            reverse = {"0": False, "1": True}[tokens.get("r", ["0"])[0]]
        except (ValueError, UnicodeError, KeyError, binascii.Error):
            raise ApplicationError(errors.CURSOR_INVALID) from None
        position = tokens.get("p", [None])[0]
        if position is not None:
            self._check_position(position)
        return pagination.Cursor(offset=offset, reverse=reverse, position=position)

    def _check_position(self, position: str) -> None:
        try:
            field = self.model._meta.get_field(self.ordering[0].lstrip("-"))
        except FieldDoesNotExist:
            return
        try:
            value = field.to_python(position)
            field.run_validators(value)
        except (ValidationError, ValueError, TypeError, OverflowError):
            raise ApplicationError(errors.CURSOR_INVALID) from None
        # The API hands out moments with their offset; one without it was not handed out.
        if value is None or (isinstance(value, datetime.datetime) and timezone.is_naive(value)):
            raise ApplicationError(errors.CURSOR_INVALID)
