"""a laboratory's name for its reports; a case's white-cell count for absolute counts

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 01:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("laboratory_name", sa.String(length=128), nullable=True))
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wbc_per_nl", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("wbc_per_nl")
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.drop_column("laboratory_name")
