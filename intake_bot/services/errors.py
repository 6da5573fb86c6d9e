"""The services' one error type."""


class ServiceError(Exception):
    """Something the operator or member can correct; the message is one plain line."""
