"""The configuration tables in the docs are the settings classes' own."""

from __future__ import annotations

import pytest

from scripts import config_docs


def test_tables_match_the_settings_classes() -> None:
    assert config_docs.main(["--check"]) == 0


@pytest.mark.parametrize(("marker", "path"), config_docs.TABLES)
def test_every_variable_is_described(marker: str, path: str) -> None:
    table = config_docs.render_table(config_docs._settings_class(path))
    rows = table.splitlines()[2:]
    assert rows, f"{marker}: {path} declares no variables"
    for row in rows:
        variable, default, meaning = (cell.strip() for cell in row.strip("|").split(" | "))
        assert variable.startswith("`") and default.startswith("`"), row
        assert meaning, f"{marker}: {variable} has no description"


def test_a_stale_table_is_rewritten() -> None:
    text = "before\n<!-- config:shared -->\n| old |\n<!-- /config:shared -->\nafter\n"
    new = config_docs.rewrite(text)
    assert new.startswith("before\n<!-- config:shared -->\n| variable |")
    assert "| old |" not in new and new.endswith("<!-- /config:shared -->\nafter\n")
    assert config_docs.rewrite(new) == new
