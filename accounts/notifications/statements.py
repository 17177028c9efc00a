"""The raw statements of notifications, composed with `psycopg.sql`; values are parameters."""

from __future__ import annotations

from psycopg import sql

from accounts.notifications.models import Notification, NotificationPreference

NOTIFICATIONS = sql.Identifier(Notification._meta.db_table)
PREFERENCES = sql.Identifier(NotificationPreference._meta.db_table)

# When a push to a person may go: now, or when the quiet hours that cover now end (local time). Over
# `quiet`, the person's row of quiet hours (left joined: none, now); `%(now)s` and `%(tz)s` given.
PUSH_DUE_AT = sql.SQL(
    """
    CASE WHEN quiet.user_id IS NULL OR NOT (
             (quiet.starts_at < quiet.ends_at
              AND (%(now)s AT TIME ZONE %(tz)s)::time >= quiet.starts_at
              AND (%(now)s AT TIME ZONE %(tz)s)::time < quiet.ends_at)
          OR (quiet.starts_at > quiet.ends_at
              AND ((%(now)s AT TIME ZONE %(tz)s)::time >= quiet.starts_at
                   OR (%(now)s AT TIME ZONE %(tz)s)::time < quiet.ends_at)))
         THEN %(now)s
         ELSE ((CASE WHEN (%(now)s AT TIME ZONE %(tz)s)::time < quiet.ends_at
                     THEN (%(now)s AT TIME ZONE %(tz)s)::date
                     ELSE (%(now)s AT TIME ZONE %(tz)s)::date + 1 END) + quiet.ends_at)
              AT TIME ZONE %(tz)s
    END
    """
)

# One statement: the rows to insert, with the people's inbox preferences, once per person and event;
# then, from the rows just inserted, the pushes of the kinds that have an active template, for the
# people who did not turn the channel off and hold a grant — in quiet hours, due when they end
# (`PUSH_DUE_AT`). `{rows}` yields (user_id, params jsonb, event_key). Only the two counts come back:
# raising for a city costs no row in Python.
NOTIFICATIONS_INSERT = sql.SQL(
    """
    WITH inserted AS (
        INSERT INTO {notifications} (public_id, user_id, kind, params, event_key, created_at)
        SELECT gen_random_uuid(), rows.user_id, %(kind)s, rows.params, rows.event_key, %(now)s
          FROM ({rows}) AS rows (user_id, params, event_key)
         WHERE NOT EXISTS (
             SELECT 1 FROM {preferences} AS preference
              WHERE preference.user_id = rows.user_id AND preference.kind = %(kind)s
                AND preference.channel = 'inbox' AND NOT preference.is_enabled
         )
        ON CONFLICT (user_id, event_key) DO NOTHING
        RETURNING id, user_id
    ),
    pushes AS (
        INSERT INTO accounts_wechatpush
            (notification_id, template_id, status, send_after, attempts, created_at)
        SELECT inserted.id, template.id, 'pending', {push_due_at}, 0, %(now)s
          FROM inserted
          JOIN accounts_wechattemplate AS template ON template.kind = %(kind)s AND template.is_active
          JOIN accounts_wechatsubscription AS grant_ ON grant_.user_id = inserted.user_id
           AND grant_.template_id = template.id AND grant_.remaining > 0
          LEFT JOIN accounts_quiethours AS quiet ON quiet.user_id = inserted.user_id
         WHERE NOT EXISTS (
               SELECT 1 FROM {preferences} AS preference
                WHERE preference.user_id = inserted.user_id AND preference.kind = %(kind)s
                  AND preference.channel = 'wechat' AND NOT preference.is_enabled
           )
        ON CONFLICT (notification_id) DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM pushes)
    """
)

# The rows of one event for a list of people: (person, params, event key), for `{rows}` above.
PEOPLE_ROWS = sql.SQL(
    "SELECT person, CAST(%(n_params)s AS jsonb), %(n_event_key)s"
    " FROM unnest(CAST(%(n_people)s AS bigint[])) AS person"
)

# A claimed push against the person's choices as they are now (they may have changed while it
# waited): whether WeChat is still on for its kind, and when it may go (`PUSH_DUE_AT`).
PUSH_CHOICES = sql.SQL(
    """
    SELECT NOT EXISTS (
               SELECT 1 FROM {preferences} AS preference
                WHERE preference.user_id = notification.user_id AND preference.kind = notification.kind
                  AND preference.channel = 'wechat' AND NOT preference.is_enabled
           ),
           {push_due_at}
      FROM {notifications} AS notification
      LEFT JOIN accounts_quiethours AS quiet ON quiet.user_id = notification.user_id
     WHERE notification.id = %(notification)s
    """
).format(preferences=PREFERENCES, notifications=NOTIFICATIONS, push_due_at=PUSH_DUE_AT)
