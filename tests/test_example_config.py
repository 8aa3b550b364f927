"""deploy/secmon.example.yml is valid and documents every option."""

from __future__ import annotations

import typing
from pathlib import Path

from pydantic import BaseModel

from secmon.collect.sources.settings import SourceSettings
from secmon.config import Settings, load_settings

EXAMPLE = Path(__file__).parent.parent / "deploy" / "secmon.example.yml"


def option_names(model: type[BaseModel]) -> set[str]:
    names = set()
    for name, field in model.model_fields.items():
        names.add(name)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            names |= option_names(field.annotation)
    return names


def test_the_example_config_loads_and_equals_the_defaults() -> None:
    assert load_settings(EXAMPLE, environ={}) == Settings()


def source_types() -> list[type[BaseModel]]:
    union = typing.get_args(SourceSettings)[0]  # Annotated[Union[...], discriminator]
    return list(typing.get_args(union))


def test_the_example_config_mentions_every_option() -> None:
    text = EXAMPLE.read_text()
    names = option_names(Settings).union(*(option_names(source) for source in source_types()))
    missing = sorted(name for name in names if f"{name}:" not in text)
    assert missing == []
