"""Drop the two redundant indexes of segment membership.

``segment_id`` alone is the prefix of the unique (segment, customer) index, and
``customer_id`` was indexed twice (the key's own index and an explicit one). A refresh
writes every index once per member, so at 500k members these were half the index writes.
Only the indexes go: ``AlterField`` would rebuild the table on SQLite.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "customers_segmentmembership_segment_id_160add9d": "segment_id",
    "customers_s_custome_ce841d_idx": "customer_id",
}


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0010_metrics_nps_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=(
                        f'CREATE INDEX "{name}" ON "customers_segmentmembership" ("{column}")'
                    ),
                )
                for name, column in INDEXES.items()
            ],
            state_operations=[
                migrations.RemoveIndex(
                    model_name="segmentmembership", name="customers_s_custome_ce841d_idx"
                ),
                migrations.AlterField(
                    model_name="segmentmembership",
                    name="segment",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="memberships",
                        to="customers.segment",
                    ),
                ),
            ],
        ),
    ]
