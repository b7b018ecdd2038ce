"""laboratory models: a model version and a training job may belong to one group

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 11:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing versions and jobs stay NULL: they are the laboratory-wide models and retrainings.
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("group_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_model_versions_group_id", ["group_id"])
        batch_op.create_foreign_key("fk_model_versions_group_id_groups", "groups",
                                    ["group_id"], ["id"])
    with op.batch_alter_table("training_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("group_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_training_jobs_group_id_groups", "groups",
                                    ["group_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("training_jobs", schema=None) as batch_op:
        batch_op.drop_constraint("fk_training_jobs_group_id_groups", type_="foreignkey")
        batch_op.drop_column("group_id")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_constraint("fk_model_versions_group_id_groups", type_="foreignkey")
        batch_op.drop_index("ix_model_versions_group_id")
        batch_op.drop_column("group_id")
