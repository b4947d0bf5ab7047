"""Approval form values checked against their form fields."""

from __future__ import annotations

from typing import Any

import pytest

from runctl_server.engine.forms import resolve_form_values
from runctl_server.errors import InvalidArgument

FIELDS: list[dict[str, Any]] = [
    {"name": "approved", "type": "boolean", "required": True},
    {"name": "note", "type": "text"},
    {"name": "amount", "type": "number", "default": 10},
    {"name": "tier", "type": "select", "options": ["gold", "silver"], "default": "silver"},
    {"name": "comment"},  # no type: text
]


def violations(values: dict[str, Any], fields: list[dict[str, Any]] = FIELDS) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as error:
        resolve_form_values(fields, values)
    assert error.value.reason == "FORM_VALUES_INVALID"
    return {v.field: v.description for v in error.value.violations}


def test_valid_values_keep_what_was_given_and_fill_defaults() -> None:
    resolved = resolve_form_values(FIELDS, {"approved": False, "note": "ok", "amount": 2.5})
    assert resolved == {"approved": False, "note": "ok", "amount": 2.5, "tier": "silver"}


def test_null_counts_as_omitted() -> None:
    assert resolve_form_values(FIELDS, {"approved": True, "tier": None})["tier"] == "silver"


def test_every_bad_value_is_reported_at_once() -> None:
    found = violations({"note": 3, "amount": "ten", "tier": "bronze", "comment": False, "extra": 1})
    assert found == {
        "values.approved": "is required",
        "values.note": "must be a string, got a number",
        "values.amount": "must be a number, got a string",
        "values.tier": "must be one of: gold, silver",
        "values.comment": "must be a string, got a boolean",
        "values.extra": "is not a field of this form (fields: approved, note, amount, tier, comment)",
    }


@pytest.mark.parametrize(
    ("value", "description"),
    [
        ("yes", "must be true or false, got a string"),
        (1, "must be true or false, got a number"),
        ([True], "must be true or false, got an array"),
        ({"a": 1}, "must be true or false, got an object"),
    ],
)
def test_boolean_fields_take_only_booleans(value: Any, description: str) -> None:
    assert violations({"approved": value}) == {"values.approved": description}


def test_a_number_field_refuses_booleans() -> None:
    assert violations({"approved": True, "amount": True}) == {
        "values.amount": "must be a number, got a boolean"
    }


def test_a_select_value_must_be_a_string_option() -> None:
    assert violations({"approved": True, "tier": 1}) == {
        "values.tier": "must be one of: gold, silver; got a number"
    }


def test_an_empty_string_does_not_fill_a_required_field() -> None:
    fields = [{"name": "reason", "type": "text", "required": True}]
    assert violations({"reason": ""}, fields) == {"values.reason": "is required"}


def test_optional_fields_without_default_are_left_out() -> None:
    assert resolve_form_values([{"name": "note", "type": "text"}], {}) == {}


def test_a_form_without_fields_takes_any_object() -> None:
    assert resolve_form_values([], {"approved": True, "anything": [1]}) == {"approved": True, "anything": [1]}


def test_the_prefix_names_the_request_field() -> None:
    with pytest.raises(InvalidArgument) as error:
        resolve_form_values(FIELDS, {}, prefix="data")
    assert [v.field for v in error.value.violations] == ["data.approved"]
