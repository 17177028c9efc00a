"""The prepared cursor of the hot statements: prepared once per connection, otherwise a Django cursor.

It must take part in the connection's transaction, raise Django's errors, show in
`connection.queries`, leave the ORM's statements unprepared, and survive a rollback (psycopg
forgets its prepared statements at every rollback and prepares them again on the next run).
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from core.db import prepared_cursor, prepared_fetchone
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db

_NICKNAME_SQL = "SELECT nickname FROM accounts_user WHERE id = %(id)s"


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def _nickname(user_id: int) -> str:
    with prepared_cursor() as cursor:
        cursor.execute(_NICKNAME_SQL, {"id": user_id})
        return cursor.fetchone()[0]


def test_a_statement_is_prepared_once_on_the_server_and_then_only_executed():
    user = UserFactory(nickname="Lin")
    assert _nickname(user.pk) == "Lin"
    prepared = [statement for statement in _prepared_statements() if "SELECT nickname" in statement]
    assert len(prepared) == 1
    assert "$1" in prepared[0]  # the value is bound on the server, not written into the text

    other = UserFactory(nickname="Wei")
    assert _nickname(other.pk) == "Wei"
    assert len([statement for statement in _prepared_statements() if "SELECT nickname" in statement]) == 1


def test_the_orm_keeps_its_own_unprepared_statements():
    user = UserFactory()
    _nickname(user.pk)
    for _ in range(10):
        User.objects.filter(pk=user.pk).first()
    assert not [statement for statement in _prepared_statements() if 'accounts_user"."id"' in statement]


def _rename_then_fail(user_id: int) -> None:
    with transaction.atomic():
        with prepared_cursor() as cursor:
            cursor.execute(
                "UPDATE accounts_user SET nickname = %(name)s WHERE id = %(id)s",
                {"name": "after", "id": user_id},
            )
        assert _nickname(user_id) == "after"  # the same transaction sees its own write
        raise RuntimeError("the caller fails after the statement")


def test_it_writes_inside_the_callers_transaction_and_a_rollback_undoes_it():
    user = UserFactory(nickname="before")
    with pytest.raises(RuntimeError):
        _rename_then_fail(user.pk)
    user.refresh_from_db()
    assert user.nickname == "before"
    # psycopg forgot its statements at the rollback: the next run prepares the statement again.
    assert _nickname(user.pk) == "before"


def test_database_errors_are_djangos_and_leave_nothing_behind():
    first = UserFactory()
    second = UserFactory()
    with pytest.raises(IntegrityError), transaction.atomic(), prepared_cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_user SET username = %(name)s WHERE id = %(id)s",
            {"name": first.username, "id": second.pk},
        )
    second.refresh_from_db()
    assert second.username != first.username


def test_its_statements_show_in_the_connections_query_log():
    user = UserFactory()
    with CaptureQueriesContext(connection) as queries:
        _nickname(user.pk)
    assert [query["sql"] for query in queries.captured_queries if "SELECT nickname" in query["sql"]]


def test_turned_off_it_is_the_ordinary_cursor(settings):
    settings.DATABASE_PREPARED_STATEMENTS = False
    user = UserFactory(nickname="Fang")
    assert _nickname(user.pk) == "Fang"
    assert not [statement for statement in _prepared_statements() if "SELECT nickname" in statement]


# --- prepared_fetchone: the same, on a cursor the connection keeps ---------------------------------


def _nickname_kept(user_id: int) -> str:
    return prepared_fetchone(_NICKNAME_SQL, {"id": user_id})[0]


def test_the_kept_cursor_prepares_once_and_answers_the_first_row():
    user = UserFactory(nickname="Lin")
    other = UserFactory(nickname="Wei")

    assert _nickname_kept(user.pk) == "Lin"
    assert _nickname_kept(other.pk) == "Wei"
    assert prepared_fetchone(_NICKNAME_SQL, {"id": -1}) is None

    assert len([statement for statement in _prepared_statements() if "SELECT nickname" in statement]) == 1


def test_the_kept_cursor_writes_inside_the_callers_transaction_and_a_rollback_undoes_it():
    user = UserFactory(nickname="before")

    def rename_then_fail() -> None:
        with transaction.atomic():
            prepared_fetchone(
                "UPDATE accounts_user SET nickname = %(name)s WHERE id = %(id)s RETURNING id",
                {"name": "after", "id": user.pk},
            )
            assert _nickname_kept(user.pk) == "after"  # the same transaction sees its own write
            raise RuntimeError("the caller fails after the statement")

    with pytest.raises(RuntimeError):
        rename_then_fail()

    user.refresh_from_db()
    assert user.nickname == "before"
    assert _nickname_kept(user.pk) == "before"


def test_the_kept_cursor_raises_djangos_errors_and_leaves_nothing_behind():
    first, second = UserFactory(), UserFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        prepared_fetchone(
            "UPDATE accounts_user SET username = %(name)s WHERE id = %(id)s RETURNING id",
            {"name": first.username, "id": second.pk},
        )

    second.refresh_from_db()
    assert second.username != first.username
    assert _nickname_kept(second.pk) == second.nickname


@pytest.mark.django_db(transaction=True)
def test_the_kept_cursor_follows_a_new_server_connection():
    user = UserFactory(nickname="Fang")
    assert _nickname_kept(user.pk) == "Fang"

    connection.close()  # a new server connection: the statement is prepared again on it

    assert _nickname_kept(user.pk) == "Fang"


@pytest.mark.django_db(transaction=True)
def test_the_kept_cursor_shows_in_the_query_log_and_turned_off_is_the_ordinary_cursor(settings):
    user = UserFactory(nickname="Mei")
    with CaptureQueriesContext(connection) as queries:
        _nickname_kept(user.pk)
    assert [query["sql"] for query in queries.captured_queries if "SELECT nickname" in query["sql"]]

    settings.DATABASE_PREPARED_STATEMENTS = False
    connection.close()
    assert _nickname_kept(user.pk) == "Mei"
    assert not [statement for statement in _prepared_statements() if "SELECT nickname" in statement]
