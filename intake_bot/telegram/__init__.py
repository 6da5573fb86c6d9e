"""The python-telegram-bot adapter: turns Telegram updates into engine steps and replies.

One of the few places plaintext exists: answers arrive here and are handed to the crypto
module at once. Nothing here logs content or identifiers.
"""
