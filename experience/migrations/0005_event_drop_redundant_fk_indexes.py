"""Drop the single-column indexes on ``Event.customer`` and ``Event.touchpoint``.

The composite indexes ``(customer, occurred_at)`` and ``(touchpoint, occurred_at)`` lead
with the same columns and serve every lookup and cascade by them, so each of the two was
only one more B-tree insert per ingested event. Only the indexes go: ``AlterField`` would
rebuild the 10M-row table on SQLite and re-validate the foreign keys on PostgreSQL.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "experience_event_customer_id_d4e513da": "customer_id",
    "experience_event_touchpoint_id_5adbe535": "touchpoint_id",
}


class Migration(migrations.Migration):
    dependencies = [
        ("experience", "0004_carts_product_changes_invitations_situation_rules"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX "{name}" ON "experience_event" ("{column}")',
                )
                for name, column in INDEXES.items()
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="customer",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="customers.customer",
                    ),
                ),
                migrations.AlterField(
                    model_name="event",
                    name="touchpoint",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="experience.touchpoint",
                    ),
                ),
            ],
        ),
    ]
