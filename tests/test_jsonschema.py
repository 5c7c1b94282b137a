"""The published JSON Schema and define_connector agree on a corpus of manifests."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from connectors_core import ManifestError, define_connector
from connectors_core._jsonschema import manifest_schema
from connectors_core.cli import cli
from tests.test_manifest import INVALID, VALID_EDGES, wire, with_

SCHEMA = manifest_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

# What JSON Schema cannot say exactly. The schema accepts these and the
# validator does not: more lenient, never stricter. Anything else must agree.
KNOWN_LENIENT = {
    ("capabilities", "duplicate capability id"),  # uniqueness by one field of the items
    ("fields", "duplicate field id"),
    ("fields", "not a valid regular expression"),  # the schema cannot compile a pattern
    ("fields", "a choice field needs"),  # rules across the fields of one item
    ("fields", "only a choice field"),
    ("fields", "does not apply to"),
    ("fields", "must not exceed maxLength"),
    ("fields", "the default of an integer field"),  # a default is checked by its field's rules
    ("fields", "a secret field cannot have a default"),
    ("fields", "a boolean field has no default"),
    ("auth.authorizeUrl", "unknown placeholder"),  # placeholders name fields elsewhere
    ("auth.tokenUrl", "is not a valid"),
    ("auth.tokenUrl", "unmatched"),
    ("auth.authorizeParams", "unknown placeholder"),
    ("auth.tokenResponse", "keeps the value as"),
    ("api", "unknown placeholder"),
    ("api", "is in tokenExpiredStatuses too"),  # two arrays compared
    ("connection.startPath", "must be '/api/integrations/"),  # depends on the id
    ("connection.statusPath", "must be '/api/integrations/"),
    ("translations", "translates no step"),  # the lengths of two arrays compared
    ("translations", "no field has this id"),  # keys checked against ids elsewhere
}


def accepted_by_validator(data: Any) -> bool:
    try:
        define_connector(data)
    except ManifestError:
        return False
    return True


def accepted_by_schema(data: Any) -> bool:
    return bool(VALIDATOR.is_valid(data))


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_cli_prints_the_schema() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == SCHEMA


@pytest.mark.parametrize(
    "data",
    [wire(), *(with_(p, v) for p, v in VALID_EDGES)],
    ids=["full", *(f"{p}={v!r}"[:40] for p, v in VALID_EDGES)],
)
def test_valid_manifests_pass_both(data: dict[str, Any]) -> None:
    assert accepted_by_validator(data)
    assert accepted_by_schema(data), list(VALIDATOR.iter_errors(data))


@pytest.mark.parametrize(
    ("path", "value", "expected"), INVALID, ids=[f"{p}={v!r}"[:40] for p, v, _ in INVALID]
)
def test_invalid_manifests_fail_both(path: str, value: Any, expected: str) -> None:
    data = with_(path, value)
    assert not accepted_by_validator(data)
    lenient = any(path.startswith(field) and marker in expected for field, marker in KNOWN_LENIENT)
    if lenient:
        assert accepted_by_schema(data)  # documented: the schema cannot say it
    else:
        assert not accepted_by_schema(data), f"the schema accepts {path}={value!r}"


def test_the_schema_documents_what_it_only_approximates() -> None:
    assert "capability id must be unique" in SCHEMA["$comment"]
    assert "IP address is public" in SCHEMA["$comment"]


def test_every_field_has_a_description() -> None:
    for name, definition in [("Connector", SCHEMA), *SCHEMA["$defs"].items()]:
        for field, schema in definition.get("properties", {}).items():
            if field not in ("$schema", "type"):
                assert schema.get("description"), f"{name}.{field} has no description"
