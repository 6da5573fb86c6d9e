"""Every form field of the staff interface has a visible label (the issue's rule, and what
screen readers and tired people need): checked on the template sources, so a new field
without one fails here."""

from __future__ import annotations

from html.parser import HTMLParser
from importlib import resources

import pytest

FIELDS = {"input", "select", "textarea"}
UNLABELLED_TYPES = {"hidden", "submit", "button"}


class _Fields(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.labels_for: set[str] = set()
        self.fields: list[tuple[str, str | None, bool]] = []
        self._open_labels = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "label":
            self._open_labels += 1
            if values.get("for"):
                self.labels_for.add(str(values["for"]))
        elif tag in FIELDS and values.get("type") not in UNLABELLED_TYPES:
            self.fields.append((tag, values.get("id"), self._open_labels > 0))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._open_labels = max(0, self._open_labels - 1)


TEMPLATES = sorted(
    entry.name
    for entry in (resources.files("admin") / "templates").iterdir()
    if entry.name.endswith(".html")
)


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_field_has_a_visible_label(name: str) -> None:
    source = (resources.files("admin") / "templates" / name).read_text(encoding="utf-8")
    parser = _Fields()
    parser.feed(source)
    for tag, field_id, wrapped in parser.fields:
        assert wrapped or (field_id is not None and field_id in parser.labels_for), (
            f"{name}: a <{tag} id={field_id!r}> has no <label>"
        )


def test_the_check_sees_fields() -> None:
    parser = _Fields()
    parser.feed('<label for="a">A</label><input id="a"><input id="b"><select id="c"></select>')
    unlabelled = [f for f in parser.fields if not f[2] and f[1] not in parser.labels_for]
    assert [f[1] for f in unlabelled] == ["b", "c"]
