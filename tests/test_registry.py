"""The registry: lookup, stable iteration, filters and duplicate protection."""

from __future__ import annotations

import pytest

from connectors_core import (
    Category,
    Connector,
    DuplicateConnectorError,
    Provider,
    Registry,
    Status,
    UnknownConnectorError,
    define_connector,
)


def make(
    connector_id: str,
    category: str = "events",
    status: str = "available",
    tags: tuple[str, ...] = (),
) -> Connector:
    return define_connector(
        id=connector_id,
        name=connector_id.title(),
        summary="s",
        description="d",
        category=category,
        status=status,
        auth={"type": "none"},
        capabilities=[{"id": "sync", "label": "Sync"}],
        tags=list(tags),
    )


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    registry.register(make("zeta", "marketing", tags=("ads",)))
    registry.register(make("alpha", "events", "beta", tags=("official", "ads")))
    registry.register(make("mid", "events", "coming-soon"))
    return registry


def test_get_returns_the_connector(registry: Registry) -> None:
    assert registry.get("alpha").name == "Alpha"
    assert registry["mid"].status is Status.COMING_SOON
    assert "zeta" in registry
    assert "nope" not in registry


def test_unknown_id_is_a_clear_error_with_a_suggestion(registry: Registry) -> None:
    with pytest.raises(UnknownConnectorError) as info:
        registry.get("alpa")
    assert str(info.value) == "no connector with id 'alpa' is registered; did you mean 'alpha'?"
    assert info.value.connector_id == "alpa"
    assert isinstance(info.value, LookupError)


def test_unknown_id_in_an_empty_registry_says_nothing_is_installed() -> None:
    with pytest.raises(UnknownConnectorError, match=r"no connectors are installed"):
        Registry().get("evencio")


def test_iteration_is_sorted_by_id_whatever_the_registration_order(registry: Registry) -> None:
    assert [c.id for c in registry] == ["alpha", "mid", "zeta"]
    assert registry.ids() == ["alpha", "mid", "zeta"]
    assert len(registry) == 3


def test_filter_by_category_status_and_tag(registry: Registry) -> None:
    assert [c.id for c in registry.filter(category="events")] == ["alpha", "mid"]
    assert [c.id for c in registry.filter(category=Category.MARKETING)] == ["zeta"]
    assert [c.id for c in registry.filter(status="coming-soon")] == ["mid"]
    assert [c.id for c in registry.filter(tag="ads")] == ["alpha", "zeta"]
    assert [c.id for c in registry.filter(category="events", tag="ads")] == ["alpha"]
    assert registry.filter(category="analytics") == []
    assert len(registry.filter()) == 3


def test_filter_rejects_unknown_values_naming_the_valid_ones(registry: Registry) -> None:
    with pytest.raises(ValueError, match=r"unknown status 'soon'; expected one of available"):
        registry.filter(status="soon")


def test_registering_an_existing_id_names_both_providers(registry: Registry) -> None:
    first = Provider("acme", "acme-connectors", "1.0")
    second = Provider("acme2", "other-connectors", "2.0")
    registry.register(make("dup"), first)

    with pytest.raises(DuplicateConnectorError) as info:
        registry.register(make("dup"), second)

    assert info.value.existing == first
    assert info.value.duplicate == second
    assert str(info.value) == (
        "connector id 'dup' is provided by both acme-connectors 1.0 (plugin 'acme') and "
        "other-connectors 2.0 (plugin 'acme2'); uninstall or deny one of them"
    )
    assert registry.provider("dup") == first


def test_code_registered_connectors_have_a_code_provider(registry: Registry) -> None:
    assert registry.provider("alpha") == Provider("<code>")
    assert str(registry.provider("alpha")) == "plugin '<code>'"
