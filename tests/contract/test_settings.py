"""contract.settings: groups of variables, settings given by field name, immutability."""

from __future__ import annotations

import pytest
from pydantic import Field

from contract.errors import ConfigError
from contract.settings import EnvSettings, env_names


class Store(EnvSettings):
    host: str = Field(validation_alias="STORE_HOST", description="host")
    port: int = Field(1, ge=1, validation_alias="STORE_PORT", description="port")


class Program(EnvSettings):
    name: str = Field("p", validation_alias="PROGRAM_NAME", description="name")
    store: Store | None = Field(None, validation_alias="STORE_HOST", description="the store")


def test_a_group_is_built_from_its_own_variables_when_its_switch_is_set() -> None:
    assert Program.from_env({"STORE_PORT": "7"}).store is None
    program = Program.from_env({"STORE_HOST": "h", "STORE_PORT": "7", "PROGRAM_NAME": "x"})
    assert program.store == Store(host="h", port=7) and program.name == "x"
    with pytest.raises(ConfigError) as info:
        Program.from_env({"STORE_HOST": "h", "STORE_PORT": "0"})
    assert info.value.variable == "STORE_PORT"
    assert env_names(Program) == {"PROGRAM_NAME": "name", "STORE_HOST": "store"}


def test_settings_given_by_field_name_name_the_variable_in_errors() -> None:
    assert Store.from_fields(host="h", port=2) == Store.from_env(
        {"STORE_HOST": "h", "STORE_PORT": "2"}
    )
    with pytest.raises(ConfigError) as info:
        Store.from_fields(host="h", port="many")
    assert info.value.variable == "STORE_PORT" and str(info.value).startswith("STORE_PORT: ")


def test_settings_are_immutable() -> None:
    program = Program.from_env({})
    with pytest.raises(AttributeError):
        program.name = "y"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del program.name
    assert program.name == "p"
