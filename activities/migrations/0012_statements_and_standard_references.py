"""Signed statements: peer platforms, nonces, imported statements; each behaviour's standard reference.

The default references map the methodology's behaviours onto the seven categories of the group
standard T/ACEF 031-2022 (clothing, food, housing, travel, use, office, digital finance); operators
edit them in the admin (docs/interop.md). A behaviour an operator already mapped is left alone.
"""

import django.core.validators
import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models


STANDARD = "T/ACEF 031-2022"
# code: (category, the behaviour as the standard's category names it)
STANDARD_REFERENCES = {
    "walk": ("travel", "步行"),
    "bus": ("travel", "公交出行"),
    "metro": ("travel", "地铁出行"),
    "bike_share": ("travel", "共享单车"),
    "nev_km": ("travel", "新能源汽车出行"),
    "utility_payment": ("digital_finance", "线上缴纳生活费用"),
    "e_invoice": ("digital_finance", "电子发票/电子账单"),
    "online_booking": ("digital_finance", "线上预约购票"),
    "no_tableware": ("food", "外卖不使用一次性餐具"),
    "old_clothes": ("clothing", "旧衣回收"),
    "recycling": ("housing", "垃圾分类回收"),
}


def fill_standard_references(apps, schema_editor):
    Behaviour = apps.get_model("activities", "Behaviour")
    for code, (category, name) in STANDARD_REFERENCES.items():
        Behaviour.objects.filter(code=code, standard="").update(
            standard=STANDARD, standard_category=category, standard_behaviour=name
        )


class Migration(migrations.Migration):
    dependencies = [
        ("activities", "0011_one_credit_per_instance"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="behaviour",
            name="standard",
            field=models.CharField(
                blank=True,
                default="",
                help_text="e.g. T/ACEF 031-2022",
                max_length=40,
                verbose_name="standard",
            ),
        ),
        migrations.AddField(
            model_name="behaviour",
            name="standard_behaviour",
            field=models.CharField(
                blank=True,
                default="",
                help_text="The behaviour as the standard names it, e.g. 公交出行.",
                max_length=64,
                verbose_name="behaviour in the standard",
            ),
        ),
        migrations.AddField(
            model_name="behaviour",
            name="standard_category",
            field=models.CharField(
                blank=True,
                choices=[
                    ("clothing", "clothing"),
                    ("food", "food"),
                    ("housing", "housing"),
                    ("travel", "travel"),
                    ("use", "use"),
                    ("office", "office"),
                    ("digital_finance", "digital finance"),
                ],
                default="",
                max_length=16,
                verbose_name="category in the standard",
            ),
        ),
        migrations.CreateModel(
            name="PeerPlatform",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100, verbose_name="name")),
                (
                    "issuer",
                    models.CharField(
                        help_text="The `iss` of its statements, exactly.",
                        max_length=200,
                        unique=True,
                        verbose_name="issuer",
                    ),
                ),
                (
                    "jwks_url",
                    models.CharField(
                        blank=True,
                        help_text="Where its public keys are published (fetched on a new key id).",
                        max_length=200,
                        validators=[django.core.validators.URLValidator(schemes=["https", "http"])],
                        verbose_name="JWKS URL",
                    ),
                ),
                (
                    "jwks",
                    models.JSONField(
                        blank=True,
                        default=dict,
                        help_text='{"keys": [{"kty": "OKP", …}]}',
                        verbose_name="public keys (JWKS)",
                    ),
                ),
                (
                    "jwks_fetched_at",
                    models.DateTimeField(
                        blank=True, editable=False, null=True, verbose_name="keys fetched at"
                    ),
                ),
                (
                    "counts_in_report",
                    models.BooleanField(default=True, verbose_name="counts in the carbon report"),
                ),
                (
                    "counts_in_rating",
                    models.BooleanField(default=False, verbose_name="counts in the monthly rating"),
                ),
                (
                    "counts_in_credit_profile",
                    models.BooleanField(default=False, verbose_name="counts in the green credit profile"),
                ),
                ("mints_coins", models.BooleanField(default=False, verbose_name="mints carbon coins")),
                (
                    "coin_share_percent",
                    models.PositiveSmallIntegerField(
                        default=100,
                        help_text="Coins minted for an imported statement: its carbon at our coin rate, times this share.",
                        verbose_name="coins at this share of our rate (percent)",
                    ),
                ),
                ("is_active", models.BooleanField(default=True, verbose_name="active")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "verbose_name": "peer platform",
                "verbose_name_plural": "peer platforms",
                "ordering": ["name"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("coin_share_percent__gte", 1), ("coin_share_percent__lte", 100)),
                        name="peer_coin_share_percent",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="StatementNonce",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("nonce", models.CharField(max_length=64)),
                ("created_at", models.DateTimeField()),
                ("expires_at", models.DateTimeField()),
                ("used_at", models.DateTimeField(blank=True, null=True)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "statement nonce",
                "verbose_name_plural": "statement nonces",
            },
        ),
        migrations.CreateModel(
            name="PeerStatement",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("public_id", models.UUIDField(default=uuid.uuid4, editable=False)),
                ("statement_id", models.CharField(max_length=128, verbose_name="statement id (jti)")),
                ("subject", models.CharField(max_length=128)),
                (
                    "month",
                    models.DateField(
                        help_text="The first day of the calendar month it covers.", verbose_name="month"
                    ),
                ),
                ("total_carbon_mg", models.BigIntegerField()),
                ("issued_at", models.DateTimeField()),
                ("expires_at", models.DateTimeField()),
                ("imported_at", models.DateTimeField()),
                ("token", models.TextField(blank=True)),
                (
                    "peer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="statements",
                        to="activities.peerplatform",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="peer_statements",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "nonce",
                    models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="statement",
                        to="activities.statementnonce",
                    ),
                ),
            ],
            options={
                "verbose_name": "imported statement",
                "verbose_name_plural": "imported statements",
                "ordering": ["-month", "-id"],
            },
        ),
        migrations.CreateModel(
            name="ImportedReduction",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("behaviour", models.CharField(max_length=64, verbose_name="the issuer's behaviour code")),
                ("name", models.CharField(blank=True, max_length=100)),
                ("unit", models.CharField(blank=True, max_length=16)),
                ("quantity", models.DecimalField(blank=True, decimal_places=3, max_digits=18, null=True)),
                ("standard", models.CharField(blank=True, max_length=40)),
                ("standard_category", models.CharField(blank=True, max_length=16)),
                ("standard_behaviour", models.CharField(blank=True, max_length=64)),
                ("methodology_versions", models.JSONField(default=list)),
                ("carbon_mg", models.BigIntegerField()),
                (
                    "statement",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="reductions",
                        to="activities.peerstatement",
                    ),
                ),
            ],
            options={
                "verbose_name": "imported reduction",
                "verbose_name_plural": "imported reductions",
                "constraints": [
                    models.UniqueConstraint(fields=("statement", "behaviour"), name="one_imported_behaviour"),
                    models.CheckConstraint(
                        condition=models.Q(("carbon_mg__gt", 0)), name="imported_reduction_positive"
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="PeerSubject",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("subject", models.CharField(max_length=128)),
                ("linked_at", models.DateTimeField()),
                (
                    "peer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="activities.peerplatform",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "peer subject",
                "verbose_name_plural": "peer subjects",
                "indexes": [models.Index(fields=["user"], name="peer_subject_user")],
                "constraints": [
                    models.UniqueConstraint(fields=("peer", "subject"), name="one_person_per_peer_subject")
                ],
            },
        ),
        migrations.AddConstraint(
            model_name="statementnonce",
            constraint=models.UniqueConstraint(fields=("nonce",), name="one_statement_nonce"),
        ),
        migrations.AddIndex(
            model_name="peerstatement",
            index=models.Index(fields=["user", "month"], name="peer_statement_user_month"),
        ),
        migrations.AddIndex(
            model_name="peerstatement",
            index=models.Index(fields=["month"], name="peer_statement_month"),
        ),
        migrations.AddConstraint(
            model_name="peerstatement",
            constraint=models.UniqueConstraint(fields=("public_id",), name="one_peer_statement_public_id"),
        ),
        migrations.AddConstraint(
            model_name="peerstatement",
            constraint=models.UniqueConstraint(
                fields=("peer", "statement_id"), name="one_import_per_statement"
            ),
        ),
        migrations.AddConstraint(
            model_name="peerstatement",
            constraint=models.UniqueConstraint(
                fields=("peer", "subject", "month"), name="one_import_per_peer_and_month"
            ),
        ),
        migrations.AddConstraint(
            model_name="peerstatement",
            constraint=models.CheckConstraint(
                condition=models.Q(("total_carbon_mg__gte", 0)), name="peer_statement_not_negative"
            ),
        ),
        migrations.RunPython(fill_standard_references, migrations.RunPython.noop),
    ]
