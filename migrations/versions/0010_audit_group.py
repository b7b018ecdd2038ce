"""the audit trail records the laboratory (group) an action acted in

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Earlier events stay NULL: they were recorded before the group was.
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("group_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_audit_events_group_id_groups", "groups",
                                    ["group_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint("fk_audit_events_group_id_groups", type_="foreignkey")
        batch_op.drop_column("group_id")
