"""The base of every configuration section: strict keys and per-field help in the JSON schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from item2vec.docstrings import docstring_parameters

NAME_PATTERN = r"^[A-Za-z0-9._-]+$"


class _Section(BaseModel):
    # Unknown keys are typos far more often than intent: refuse them.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        # Prefect renders the JSON schema as the run form: give every field its own
        # help text from the numpy docstring instead of one wall of text per section.
        schema = handler.resolve_ref_schema(handler(core_schema))
        summary, fields = docstring_parameters(cls.__doc__ or "")
        schema["description"] = summary
        for name, text in fields.items():
            if name in schema.get("properties", {}):
                schema["properties"][name]["description"] = text
        return schema
