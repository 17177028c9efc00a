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

# One statement: for each row, whether it goes to the inbox (the kind not turned off there) and the
# template of its WeChat message (a template of the kind, active, the channel not turned off, a grant
# held); a notification is inserted, once per person and event, where either is wanted (`in_inbox`
# false: only to carry its message), then the pushes of those with a template, in quiet hours due
# when they end (`PUSH_DUE_AT`). `{rows}` yields (user_id, params jsonb, event_key). Only the
# counts come back (notifications in the inbox, pushes): raising for a city costs no row in Python.
NOTIFICATIONS_INSERT = sql.SQL(
    """
    WITH wanted AS MATERIALIZED (
        SELECT rows.user_id, rows.params, rows.event_key,
               NOT EXISTS (
                   SELECT 1 FROM {preferences} AS preference
                    WHERE preference.user_id = rows.user_id AND preference.kind = %(kind)s
                      AND preference.channel = 'inbox' AND NOT preference.is_enabled
               ) AS in_inbox,
               push.template_id
          FROM ({rows}) AS rows (user_id, params, event_key)
          LEFT JOIN LATERAL (
              SELECT template.id AS template_id
                FROM accounts_wechattemplate AS template
                JOIN accounts_wechatsubscription AS grant_ ON grant_.template_id = template.id
                 AND grant_.user_id = rows.user_id AND grant_.remaining > 0
               WHERE template.kind = %(kind)s AND template.is_active
                 AND NOT EXISTS (
                     SELECT 1 FROM {preferences} AS preference
                      WHERE preference.user_id = rows.user_id AND preference.kind = %(kind)s
                        AND preference.channel = 'wechat' AND NOT preference.is_enabled
                 )
               ORDER BY template.id
               LIMIT 1
          ) AS push ON true
    ),
    inserted AS (
        INSERT INTO {notifications} (public_id, user_id, kind, params, event_key, created_at, in_inbox)
        SELECT gen_random_uuid(), wanted.user_id, %(kind)s, wanted.params, wanted.event_key, %(now)s,
               wanted.in_inbox
          FROM wanted
         WHERE wanted.in_inbox OR wanted.template_id IS NOT NULL
        ON CONFLICT (user_id, event_key) DO NOTHING
        RETURNING id, user_id, event_key, in_inbox
    ),
    pushes AS (
        INSERT INTO accounts_wechatpush
            (notification_id, template_id, status, send_after, attempts, created_at)
        SELECT inserted.id, wanted.template_id, 'pending', {push_due_at}, 0, %(now)s
          FROM inserted
          JOIN wanted ON wanted.user_id = inserted.user_id AND wanted.event_key = inserted.event_key
          LEFT JOIN accounts_quiethours AS quiet ON quiet.user_id = inserted.user_id
         WHERE wanted.template_id IS NOT NULL
        ON CONFLICT (notification_id) DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM inserted WHERE in_inbox), (SELECT count(*) FROM pushes)
    """
)

# For the statement above: its per-row look-ups make the planner's estimate high enough for JIT,
# whose compiling cost more than the statement itself (473 ms against 250 ms for a small city's
# 9,893 expiry reminders). Local to the caller's transaction, which it is run in.
NOTIFICATIONS_INSERT_SETTINGS = sql.SQL("SET LOCAL jit TO OFF")

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
