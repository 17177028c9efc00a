import json
import logging

from core.logging import JsonFormatter, RequestIdFilter, reset_request_id, set_request_id


def test_log_lines_are_json_with_the_request_id_and_extras():
    record = logging.LogRecord("carbon", logging.INFO, __file__, 1, "settled %s people", (3,), None)
    record.day = "2026-11-23"
    token = set_request_id("req-abcdef12")
    try:
        RequestIdFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))
    finally:
        reset_request_id(token)
    assert line["message"] == "settled 3 people"
    assert line["request_id"] == "req-abcdef12"
    assert line["day"] == "2026-11-23"
    assert line["level"] == "INFO"
