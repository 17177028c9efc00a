"""Cursor pagination for the lists a phone syncs: stable under inserts, bounded pages."""

from rest_framework import pagination, serializers


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
