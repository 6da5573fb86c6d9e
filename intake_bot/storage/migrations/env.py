"""Alembic environment: always runs on a connection handed in by :mod:`.migrate`.

No ini file, no logging configuration of Alembic's own (ours is already set up), no URL
here: the caller passes the connection in ``config.attributes["connection"]``.
"""

from alembic import context

from intake_bot.storage.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
