"""agent credentials of computers, shown once and stored as a hash

A computer registered by the C-Monitor agent gets its own credential (only its SHA-256 hash is
stored) to fetch its settings with. Secrets kept inside JSON become sealed values
({"__encrypted__": token}) so key rotation finds them: the computers' settings snapshots are
converted. The merge events' undo records no longer hold the survivor's C-Monitor password
ciphertext: it moves to the merged record's settings (the passwords swap places; undo swaps
them back).

Revision ID: e1f2a3b4c5d6
Revises: d0e1f2a3b4c5
Create Date: 2026-11-30 22:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'e1f2a3b4c5d6'
down_revision = 'd0e1f2a3b4c5'
branch_labels = None
depends_on = None

MARK = "__encrypted__"
SECRET_KEYS = ("password", "access_password")

computer = sa.table("computer", sa.column("id", sa.Integer), sa.column("settings_snapshot", sa.JSON))
audit_event = sa.table("audit_event", sa.column("id", sa.Integer), sa.column("action", sa.String),
                       sa.column("changes", sa.JSON))
customer_settings = sa.table("customer_settings", sa.column("customer_id", sa.Integer),
                             sa.column("cmonitor_password_encrypted", sa.Text))


def _convert(value, seal: bool):
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in SECRET_KEYS and seal and isinstance(item, str):
                out[key] = {MARK: item}
            elif key in SECRET_KEYS and not seal and isinstance(item, dict) and MARK in item:
                out[key] = item[MARK]
            else:
                out[key] = _convert(item, seal)
        return out
    if isinstance(value, list):
        return [_convert(item, seal) for item in value]
    return value


def _snapshots(seal: bool) -> None:
    bind = op.get_bind()
    for row in bind.execute(sa.select(computer.c.id, computer.c.settings_snapshot)
                            .where(computer.c.settings_snapshot.is_not(None))).all():
        converted = _convert(row.settings_snapshot, seal)
        if converted != row.settings_snapshot:
            bind.execute(computer.update().where(computer.c.id == row.id).values(settings_snapshot=converted))


def _password_of(bind, customer_id):
    return bind.execute(sa.select(customer_settings.c.cmonitor_password_encrypted)
                        .where(customer_settings.c.customer_id == customer_id)).scalar()


def _set_password(bind, customer_id, value) -> None:
    bind.execute(customer_settings.update().where(customer_settings.c.customer_id == customer_id)
                 .values(cmonitor_password_encrypted=value))


def _merge_events():
    bind = op.get_bind()
    for row in bind.execute(sa.select(audit_event.c.id, audit_event.c.changes)
                            .where(audit_event.c.action == "merge")).all():
        changes = row.changes or {}
        undo = changes.get("undo")
        if isinstance(undo, dict):
            yield bind, row.id, changes, undo


def upgrade():
    with op.batch_alter_table('computer', recreate='never') as batch_op:
        batch_op.add_column(sa.Column('agent_credential_hash', sa.String(length=64), nullable=True))
    op.create_index('ix_computer_agent_credential_hash', 'computer', ['agent_credential_hash'], unique=True)
    _snapshots(seal=True)
    for bind, event_id, changes, undo in _merge_events():
        if "cmonitor_password" not in undo:
            continue
        undo = dict(undo)
        kept = undo.pop("cmonitor_password")
        if not undo.get("undone") and _password_of(bind, undo["other"]) is not None:
            # The merged record's own password is the survivor's now: it keeps the survivor's
            # old one instead, for undo to swap back.
            _set_password(bind, undo["other"], kept)
            undo["cmonitor_swapped"] = True
        bind.execute(audit_event.update().where(audit_event.c.id == event_id)
                     .values(changes={**changes, "undo": undo}))


def downgrade():
    for bind, event_id, changes, undo in _merge_events():
        if not undo.get("cmonitor_swapped"):
            continue
        undo = dict(undo)
        del undo["cmonitor_swapped"]
        if not undo.get("undone"):
            undo["cmonitor_password"] = _password_of(bind, undo["other"])
            _set_password(bind, undo["other"], _password_of(bind, undo["survivor"]))
        bind.execute(audit_event.update().where(audit_event.c.id == event_id)
                     .values(changes={**changes, "undo": undo}))
    _snapshots(seal=False)
    op.drop_index('ix_computer_agent_credential_hash', table_name='computer')
    with op.batch_alter_table('computer', recreate='never') as batch_op:
        batch_op.drop_column('agent_credential_hash')
