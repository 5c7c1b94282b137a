"""Translations of a manifest's display strings, and Connector.localized()."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from connectors_core import (
    Connector,
    FieldTranslation,
    ManifestError,
    SetupStep,
    SetupStepTranslation,
    Translation,
    define_connector,
    discover,
    to_wire,
)
from connectors_core._manifest import from_trusted_wire
from tests.test_manifest import wire


def translated(**translations: Any) -> dict[str, Any]:
    """A manifest with two set-up steps, two fields and ``translations`` (keys as locales)."""
    return {
        **wire(),
        "setup": [
            {"title": "Create a client", "description": "In the console."},
            {"title": "Connect", "description": "Click Connect."},
        ],
        "fields": [
            {"id": "shop", "label": "Shop name", "help": "As in your shop's address."},
            {"id": "region", "label": "Region"},
        ],
        "translations": {key.replace("_", "-"): value for key, value in translations.items()},
    }


FR = {
    "name": "Annonces Google",
    "summary": "Audiences et conversions de Google Ads.",
    "description": "Synchronise les audiences.",
    "setup": [{"title": "Créer un client"}, {}],
    "fields": {"shop": {"label": "Nom de la boutique"}, "region": {"help": "Votre région."}},
}


@pytest.fixture
def connector() -> Connector:
    return define_connector(
        translated(
            fr=FR,
            pt={"summary": "Públicos e conversões."},
            pt_BR={"summary": "Públicos e conversões do Google Ads."},
            es_MX={"name": "Anuncios de Google"},
            en_GB={"summary": "Audiences and conversions from Google Ads, colour included."},
        )
    )


def test_translations_are_frozen_typed_objects_that_round_trip(connector: Connector) -> None:
    french = connector.translations["fr"]
    assert french == Translation(
        name="Annonces Google",
        summary="Audiences et conversions de Google Ads.",
        description="Synchronise les audiences.",
        setup=(SetupStepTranslation(title="Créer un client"), SetupStepTranslation()),
        fields={
            "shop": FieldTranslation(label="Nom de la boutique"),
            "region": FieldTranslation(help="Votre région."),
        },
    )
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        french.name = "x"  # type: ignore[misc]

    data = to_wire(connector)
    assert data["translations"]["fr"] == FR  # camelCase, unset strings left out
    assert define_connector(data) == connector
    assert from_trusted_wire(data) == connector  # the index's way back


def test_without_translations_the_wire_form_has_none() -> None:
    connector = define_connector(wire())
    assert dict(connector.translations) == {}
    assert "translations" not in to_wire(connector)
    assert "icon" not in to_wire(connector)


def test_localized_replaces_the_display_strings_a_translation_has(connector: Connector) -> None:
    french = connector.localized("fr")

    assert (french.name, french.summary, french.description) == (
        "Annonces Google",
        "Audiences et conversions de Google Ads.",
        "Synchronise les audiences.",
    )
    # Steps by position: the first retitled, its description and the second step kept.
    assert french.setup == (
        SetupStep("Créer un client", "In the console."),
        SetupStep("Connect", "Click Connect."),
    )
    shop, region = french.fields
    assert (shop.label, shop.help) == ("Nom de la boutique", "As in your shop's address.")
    assert (region.label, region.help) == ("Region", "Votre région.")
    # Everything else is the connector's own.
    assert (
        attrs.evolve(
            french,
            name=connector.name,
            summary=connector.summary,
            description=connector.description,
            setup=connector.setup,
            fields=connector.fields,
        )
        == connector
    )


@pytest.mark.parametrize(
    ("locale", "summary"),
    [
        ("pt-BR", "Públicos e conversões do Google Ads."),  # exact
        ("pt-PT", "Públicos e conversões."),  # the language's
        ("PT_br", "Públicos e conversões do Google Ads."),  # case and '_' do not matter
        ("fr-CA", "Audiences et conversions de Google Ads."),  # the language's
        (["de", "pt-BR", "fr"], "Públicos e conversões do Google Ads."),  # first with one
        (("en-GB",), "Audiences and conversions from Google Ads, colour included."),
    ],
)
def test_localized_picks_the_best_matching_translation(
    connector: Connector, locale: str | list[str], summary: str
) -> None:
    assert connector.localized(locale).summary == summary


def test_another_region_of_the_language_serves_when_the_language_has_none(
    connector: Connector,
) -> None:
    assert connector.localized("es").name == "Anuncios de Google"
    assert connector.localized("es-ES").name == "Anuncios de Google"


@pytest.mark.parametrize(
    "locale",
    ["en", "en-US", ["en-US", "fr"], "de", ["de", "it"], [], "", ["*"], "zh-Hant-TW"],
)
def test_english_or_no_match_is_the_connector_itself(
    connector: Connector, locale: str | list[str]
) -> None:
    assert connector.localized(locale) is connector


def test_a_script_subtag_falls_back_to_shorter_tags() -> None:
    connector = define_connector(translated(zh_Hant={"name": "谷歌廣告"}))
    assert connector.localized("zh-Hant-TW").name == "谷歌廣告"
    assert connector.localized("zh-hant").name == "谷歌廣告"
    assert connector.localized("zh").name == "谷歌廣告"  # the only Chinese one


def test_a_localized_copy_is_still_a_valid_manifest(connector: Connector) -> None:
    french = connector.localized("fr")
    assert define_connector(to_wire(french)) == french
    assert french.translations == connector.translations


def test_every_problem_of_the_translations_is_reported_at_once() -> None:
    data = translated(
        fr={
            "setup": [{}, {}, {"title": "Trois"}, {}],
            "fields": {"shop": {}, "sohp": {"label": "Boutique"}},
        },
        de={"fields": {"regoin": {}}},
    )
    with pytest.raises(ManifestError) as info:
        define_connector(data)
    assert [str(p) for p in info.value.problems] == [
        "$.translations.fr.setup[2]: translates no step: setup has 2 steps, and steps are "
        "translated by position",
        "$.translations.fr.setup[3]: translates no step: setup has 2 steps, and steps are "
        "translated by position",
        "$.translations.fr.fields.sohp: no field has this id; did you mean 'shop'?",
        "$.translations.de.fields.regoin: no field has this id; did you mean 'region'?",
    ]


def test_type_errors_in_several_locales_are_reported_with_their_paths() -> None:
    data = translated(
        fr={"name": "", "fields": {"shop": {"label": 3}}},
        de={"summary": "Zwei\nZeilen"},
        it=[],
    )
    with pytest.raises(ManifestError) as info:
        define_connector(data)
    assert [p.path for p in info.value.problems] == [
        "$.translations.fr.name",
        "$.translations.fr.fields.shop.label",
        "$.translations.de.summary",
        "$.translations.it",
    ]


def test_keyword_arguments_accept_translation_objects() -> None:
    connector = define_connector(
        **wire(),
        translations={"fr": Translation(name="Annonces", setup=(SetupStepTranslation(),))},
    )
    assert connector.localized("fr-FR").name == "Annonces"
    assert to_wire(connector)["translations"] == {"fr": {"name": "Annonces", "setup": [{}]}}


# --- the bundled plugin ------------------------------------------------------------------


def test_evencio_is_translated_into_french_completely() -> None:
    evencio = discover(allow=["evencio"], strict=True).get("evencio")
    french = evencio.translations["fr"]

    assert None not in (french.name, french.summary, french.description)
    assert len(french.setup) == len(evencio.setup)
    assert all(step.title and step.description for step in french.setup)
    assert evencio.fields == ()  # so no field to translate
    assert dict(french.fields) == {}

    localized = evencio.localized(["fr-FR", "en"])
    assert localized.summary.startswith("Importez vos événements")
    assert [step.title for step in localized.setup] == [
        "Enregistrer un client OAuth dans Evencio",
        "Configurer le serveur",
        "Se connecter",
    ]
    for original, step in zip(evencio.setup, localized.setup, strict=True):
        assert step.title != original.title
        assert step.description != original.description
    assert evencio.localized("de") is evencio
