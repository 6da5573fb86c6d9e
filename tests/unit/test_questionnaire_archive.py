"""The bot archives each questionnaire version it asks; staff read old reports with it."""

from __future__ import annotations

from pathlib import Path

from intake_bot.questionnaire import archive
from intake_bot.questionnaire.loader import default_text


def test_each_version_is_kept_once_and_never_overwritten(tmp_path: Path) -> None:
    text = default_text()
    path = archive.keep(tmp_path, text)
    assert path.name == "intake-default-v1.yaml"
    assert path.stat().st_mode & 0o777 == 0o600
    changed = text.replace("version: 1", "version: 2", 1)
    second = archive.keep(tmp_path, changed)
    assert second.name == "intake-default-v2.yaml"
    # The same version again, with different text: the first copy stays as it was.
    archive.keep(tmp_path, text.replace("intake-default", "intake-default", 1) + "\n# edited\n")
    assert path.read_text(encoding="utf-8") == text
    versions = sorted((q.id, q.version) for q in archive.load_archived(tmp_path))
    assert versions == [("intake-default", 1), ("intake-default", 2)]


def test_a_damaged_archive_file_is_skipped(tmp_path: Path) -> None:
    archive.keep(tmp_path, default_text())
    (tmp_path / archive.DIRECTORY / "broken-v9.yaml").write_text("id: [", encoding="utf-8")
    assert [q.version for q in archive.load_archived(tmp_path)] == [1]


def test_nothing_archived_yet(tmp_path: Path) -> None:
    assert archive.load_archived(tmp_path) == []
