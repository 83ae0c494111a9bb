"""The configuration tables in the docs are the settings classes' own."""

from __future__ import annotations

import pytest
from pydantic import Field

from contract.defaults import REPO_ROOT
from contract.settings import EnvSettings, env_names
from scripts import config_docs
from webapp.server_settings import GunicornSettings


def test_tables_match_the_settings_classes() -> None:
    assert config_docs.main(["--check"]) == 0


@pytest.mark.parametrize(("marker", "path"), config_docs.TABLES)
def test_every_variable_is_described(marker: str, path: str) -> None:
    cls = config_docs._settings_class(path)
    table = config_docs.render_table(cls)
    rows = table.splitlines()[2:]
    assert rows, f"{marker}: {path} declares no variables"
    fields = env_names(cls)
    for row in rows:
        variable, default, meaning = (cell.strip() for cell in row.strip("|").split(" | "))
        assert variable.startswith("`"), row
        shown = config_docs.shown_default(cls.model_fields[fields[variable.strip("`")]])
        assert default == shown if shown is not None else default.startswith("`"), row
        assert meaning, f"{marker}: {variable} has no description"


@pytest.mark.parametrize(("marker", "path"), config_docs.TABLES)
def test_tables_hold_nothing_of_this_machine(marker: str, path: str) -> None:
    table = config_docs.render_table(config_docs._settings_class(path))
    assert str(REPO_ROOT) not in table, marker


def test_a_computed_default_is_shown_as_the_class_states() -> None:
    table = config_docs.render_table(GunicornSettings)
    assert "| `WEB_CONCURRENCY` | cores + 1 | worker processes |" in table.splitlines()


def test_a_computed_default_without_words_is_refused() -> None:
    class Computed(EnvSettings):
        cores: int = Field(default_factory=lambda: 3, validation_alias="CORES", description="n")

    with pytest.raises(TypeError, match=r"Computed\.cores.*doc_default"):
        config_docs.render_table(Computed)


def test_a_stale_table_is_rewritten() -> None:
    text = "before\n<!-- config:shared -->\n| old |\n<!-- /config:shared -->\nafter\n"
    new = config_docs.rewrite(text)
    assert new.startswith("before\n<!-- config:shared -->\n| variable |")
    assert "| old |" not in new and new.endswith("<!-- /config:shared -->\nafter\n")
    assert config_docs.rewrite(new) == new
