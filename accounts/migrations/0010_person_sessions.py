"""Sessions keep whom they signed in, indexed (closing an account ends its sessions by it). The live
sessions move over with it, so nobody is signed out by the change."""

from django.db import migrations, models

BATCH = 5000


def live_sessions_copy(apps, schema_editor):
    from django.contrib.auth import SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore  # the same signing salt as ours

    decoder = SessionStore()
    with schema_editor.connection.cursor() as reader, schema_editor.connection.cursor() as writer:
        reader.execute("SELECT session_key, session_data, expire_date FROM django_session WHERE expire_date > now()")
        while rows := reader.fetchmany(BATCH):
            copied = []
            for key, data, expires in rows:
                try:
                    user_id = int(decoder.decode(data)[SESSION_KEY])
                except (KeyError, TypeError, ValueError):
                    user_id = None
                copied.append((key, data, expires, user_id))
            writer.executemany(
                "INSERT INTO accounts_personsession (session_key, session_data, expire_date, user_id)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (session_key) DO NOTHING",
                copied,
            )


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0009_notification_in_inbox'),
        ('sessions', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='PersonSession',
            fields=[
                ('session_key', models.CharField(max_length=40, primary_key=True, serialize=False, verbose_name='session key')),
                ('session_data', models.TextField(verbose_name='session data')),
                ('expire_date', models.DateTimeField(db_index=True, verbose_name='expire date')),
                ('user_id', models.BigIntegerField(db_index=True, null=True)),
            ],
            options={
                'verbose_name': 'session',
                'verbose_name_plural': 'sessions',
            },
        ),
        migrations.RunPython(live_sessions_copy, migrations.RunPython.noop),
    ]
