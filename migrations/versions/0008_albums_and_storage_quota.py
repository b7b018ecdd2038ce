"""albums (a photo's Telegram media group) and the stored size of each upload (storage quota)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 06:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("media_group_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("stored_bytes", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_submissions_album", ["chat_id", "media_group_id"])


def downgrade() -> None:
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_index("ix_submissions_album")
        batch_op.drop_column("stored_bytes")
        batch_op.drop_column("media_group_id")
