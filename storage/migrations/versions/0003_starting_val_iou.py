"""Training runs remember how well the starting model did on their validation photos.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch_alter_table: SQLite cannot alter tables in place; Alembic copies it when needed.
    with op.batch_alter_table("training_runs") as batch:
        batch.add_column(sa.Column("starting_val_iou", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_runs") as batch:
        batch.drop_column("starting_val_iou")
