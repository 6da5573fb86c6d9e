"""Password rules for staff: strength by zxcvbn, read from files, never from argv."""

from __future__ import annotations

from pathlib import Path

from zxcvbn import zxcvbn

from intake_bot.crypto import Secret

from .errors import ServiceError

MIN_SCORE = 3
"""zxcvbn score required (ARCHITECTURE.md): 3 = "safely unguessable", ~10^8 guesses+."""

MAX_LENGTH = 256
"""zxcvbn's matching is super-linear; longer inputs gain nothing and cost seconds."""


def check_strength(
    password: Secret, user_inputs: list[str], *, min_score: int = MIN_SCORE, what: str = "password"
) -> None:
    """Raise :class:`ServiceError` unless the password scores at least ``min_score``
    (:data:`MIN_SCORE` unless told; a key backup's passphrase needs 4). ``what`` names it in
    the message."""
    try:
        text = password.reveal().decode("utf-8")
    except UnicodeDecodeError:
        raise ServiceError(f"the {what} is not valid UTF-8 text") from None
    if len(text) > MAX_LENGTH:
        raise ServiceError(f"the {what} is longer than {MAX_LENGTH} characters")
    result = zxcvbn(text, user_inputs=user_inputs)
    if result["score"] < min_score:
        hint = result["feedback"].get("warning") or "use a longer passphrase of unrelated words"
        raise ServiceError(
            f"the {what} is too weak (strength {result['score']} of 4, needs {min_score}): "
            f"{hint.rstrip('.')}."
        )


def read_password_file(path: Path) -> Secret:
    """A password from a file: the first line, without its line ending."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ServiceError(f"password file {path} does not exist") from None
    except OSError as exc:
        raise ServiceError(f"cannot read password file {path} ({exc.strerror})") from None
    line = raw.splitlines()[0] if raw else b""
    if not line:
        raise ServiceError(f"password file {path} is empty")
    return Secret(line)
