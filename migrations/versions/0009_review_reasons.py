"""why each cell is flagged for review (possible blast, unusual, unsure, cut by the edge)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cell_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("review_reasons", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cell_results", schema=None) as batch_op:
        batch_op.drop_column("review_reasons")
