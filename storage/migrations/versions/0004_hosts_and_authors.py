"""A training run records the machine that runs it; runs, photos and mask revisions record who made them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch_alter_table: SQLite cannot alter tables in place; Alembic copies it when needed.
    with op.batch_alter_table("training_runs") as batch:
        batch.add_column(sa.Column("host", sa.String(255), nullable=True))
        batch.add_column(sa.Column("created_by", sa.String(255), nullable=True))
    with op.batch_alter_table("photos") as batch:
        batch.add_column(sa.Column("created_by", sa.String(255), nullable=True))
    with op.batch_alter_table("mask_revisions") as batch:
        batch.add_column(sa.Column("created_by", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mask_revisions") as batch:
        batch.drop_column("created_by")
    with op.batch_alter_table("photos") as batch:
        batch.drop_column("created_by")
    with op.batch_alter_table("training_runs") as batch:
        batch.drop_column("created_by")
        batch.drop_column("host")
