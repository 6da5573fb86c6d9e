"""Every questionnaire version the bot has asked, kept so staff read old reports with the
questions their reporters saw.

The bot copies the definition it runs into ``<data dir>/questionnaires/<id>-v<version>.yaml``
at start (once per version; never overwritten). The staff interface loads them all. A
definition holds no reporter data, only questions.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .loader import QuestionnaireError, load_file, parse
from .model import Questionnaire

DIRECTORY = "questionnaires"
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def archive_path(data_dir: Path, questionnaire: Questionnaire) -> Path:
    name = _SAFE.sub("_", questionnaire.id)[:64]
    return data_dir / DIRECTORY / f"{name}-v{questionnaire.version}.yaml"


def keep(data_dir: Path, text: str) -> Path:
    """Archive a definition (validated first); an existing copy of that version stays."""
    questionnaire = parse(text)
    path = archive_path(data_dir, questionnaire)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def load_archived(data_dir: Path) -> list[Questionnaire]:
    """Every archived version that still parses (a damaged file is skipped, not fatal:
    the reports it describes are then shown by question id)."""
    found = []
    for path in sorted((data_dir / DIRECTORY).glob("*.yaml")):
        try:
            found.append(load_file(path))
        except QuestionnaireError:
            continue
    return found
