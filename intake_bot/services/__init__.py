"""Application services: the operations the CLI, the bot and the admin share.

Each takes the :class:`~intake_bot.bootstrap.App` (or a session) and raises
:class:`ServiceError`, whose message is one line fit to show an operator, for anything the
user can correct. Cryptographic failures stay :class:`~intake_bot.crypto.CryptoError`.
"""

from .errors import ServiceError

__all__ = ["ServiceError"]
