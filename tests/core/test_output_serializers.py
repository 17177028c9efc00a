"""`represent` / `represent_many`: the same answer as `Serializer(...).data`, from one instance per class."""

from __future__ import annotations

import datetime
import threading

from rest_framework import serializers

from core.api import serializers as output_serializers
from core.api.serializers import represent, represent_many


class _LineOutput(serializers.Serializer):
    day = serializers.DateField()
    coins = serializers.IntegerField()


class _BookOutput(serializers.Serializer):
    title = serializers.CharField(source="name")
    lines = _LineOutput(many=True)
    total = serializers.SerializerMethodField()

    def get_total(self, book: dict) -> int:
        return sum(line["coins"] for line in book["lines"])


def _book(index: int) -> dict:
    return {
        "name": f"book {index}",
        "lines": [{"day": datetime.date(2026, 12, day), "coins": index * day} for day in (1, 2)],
    }


def test_represent_answers_as_the_serializer_does():
    book = _book(3)
    assert represent(_BookOutput, book) == _BookOutput(book).data
    assert represent(_BookOutput, book) == {
        "title": "book 3",
        "lines": [{"day": "2026-12-01", "coins": 3}, {"day": "2026-12-02", "coins": 6}],
        "total": 9,
    }


def test_represent_many_answers_as_a_list_serializer_does():
    books = [_book(index) for index in range(3)]
    assert represent_many(_BookOutput, books) == _BookOutput(books, many=True).data
    assert represent_many(_BookOutput, []) == []


def test_one_instance_serves_every_call_and_thread():
    represent(_BookOutput, _book(1))
    built = output_serializers._built(_BookOutput)
    answers: dict[int, dict] = {}

    def answer(index: int) -> None:
        for _ in range(50):
            answers[index] = represent(_BookOutput, _book(index))

    threads = [threading.Thread(target=answer, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert output_serializers._built(_BookOutput) is built
    assert answers == {index: _BookOutput(_book(index)).data for index in range(8)}
