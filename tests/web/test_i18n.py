"""The pages in the request's language: negotiation, the French catalogue, translated manifests.

English is the language of the sources; French is the proof that everything a
user reads goes through a catalogue. Most tests drive the app in-process; one
runs Chromium with a French locale (slow). The catalogue tests fail naming the
message a developer added without extracting or translating it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po
from playwright.sync_api import Browser, expect
from starlette.requests import Request
from starlette.testclient import TestClient

from connectors_core import Category, Registry, Status, define_connector
from connectors_core.connections import Connections, Settings
from connectors_core.flows import FLOWS
from connectors_core.store import MemoryStore, generate_key
from connectors_core.web import create_app
from connectors_core.web._forms import environment
from connectors_core.web._i18n import (
    CATEGORY_LABELS,
    FLOW_TEXTS,
    LOCALE_DIR,
    STATUS_LABELS,
    Languages,
    accept_language,
    catalogue,
    locales,
    negotiate,
    speaking,
)
from tests.harness import TENANT_HEADER, Harness, build_registry
from tests.web.test_browser import TIMEOUT_MS
from tests.web.test_lifecycle import connect_multi
from tests.web.test_page import card_ids

ROOT = Path(__file__).resolve().parents[2]
POT = LOCALE_DIR / "messages.pot"
FRENCH = "fr-CH, fr;q=0.9, en;q=0.8"
# The extraction, exactly as docs/i18n.md tells a developer to run it (from the repository root).
EXTRACT = [
    "extract",
    "-F",
    "pyproject.toml",
    "--project=connectors-core",
    "--copyright-holder=The connectors-core authors",
    "--msgid-bugs-address=https://github.com/connectors-core/connectors-core/issues",
    "--add-comments=Translators:",
    "--add-location=file",
    "-o",
    "connectors_core/web/locale/messages.pot",
    ".",
]


def tricky() -> Any:
    """A connector whose French strings try to inject markup."""
    return define_connector(
        id="tricky",
        name="Tricky",
        summary="Plain English.",
        description="Plain English, longer.",
        category="analytics",
        status="deprecated",
        auth={"type": "none"},
        capabilities=[{"id": "x", "label": "X"}],
        connection={"startPath": "/api/integrations/tricky/connect"},
        translations={
            "fr": {
                "name": "Rusé <img src=x onerror=alert(1)>",
                "summary": "<script>alert('résumé')</script>",
            }
        },
    )


def build(locale: Any = None, **options: Any) -> Any:
    registry = build_registry("http://127.0.0.1:9")
    registry.register(tricky())
    settings = Settings.from_env(
        {
            "CONNECTORS_PUBLIC_URL": "http://testserver",
            "CONNECTORS_DATABASE_URL": "memory://",
            "CONNECTORS_SECRET_KEYS": generate_key(),
            "CONNECTORS_EVENCIO_CLIENT_ID": "client",
        }
    )
    return create_app(
        connections=Connections(registry, MemoryStore(), settings),
        authenticator=lambda request: request.headers.get("x-tenant"),
        locale=locale,
        **options,
    )


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(build(), headers={"x-tenant": "t1"}) as client:
        yield client


def lang(html: str) -> str:
    found = re.search(r'<html lang="([^"]+)">', html)
    assert found, html[:200]
    return found.group(1)


def card(html: str, connector_id: str) -> str:
    return html.split(f'id="card-{connector_id}"')[1].split("</li>")[0]


# --- negotiation ------------------------------------------------------------------------


def test_accept_language_with_weights_chooses_french(client: TestClient) -> None:
    response = client.get("/integrations", headers={"accept-language": FRENCH})
    html = response.text
    assert lang(html) == "fr"
    assert "<title>Intégrations</title>" in html
    assert "<h1>Intégrations</h1>" in html
    assert "Rechercher des intégrations" in html
    assert "Affichage de 13 sur 13 intégrations" in html
    assert "Accept-Language" in response.headers["vary"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de", "en"),  # no German catalogue: English
        ("en", "en"),
        ("en-US, fr;q=0.9", "en"),
        ("de-DE, fr;q=0.5", "fr"),  # the best language there is
        ("fr;q=0, en", "en"),  # q=0: not acceptable
        ("*", "en"),
        ("", "en"),
        ("FR", "fr"),
        ("fr_CA", "fr"),
        ("en;q=0.5, fr;q=0.6", "fr"),
    ],
)
def test_the_page_language_follows_accept_language(
    client: TestClient, header: str, expected: str
) -> None:
    html = client.get("/integrations", headers={"accept-language": header}).text
    assert lang(html) == expected
    assert ("<h1>Integrations</h1>" in html) == (expected == "en")


def test_english_is_the_page_it_was(client: TestClient) -> None:
    client.get("/integrations")  # the session cookie: the same CSRF token in every page after
    plain = client.get("/integrations").text
    assert client.get("/integrations", headers={"accept-language": "en-GB"}).text == plain
    assert client.get("/integrations", headers={"accept-language": "de"}).text == plain
    assert "Showing 13 of 13 integrations" in plain
    assert '<span class="pill pill-beta">Beta</span>' in card(plain, "evencio")


def test_accept_language_parsing_and_negotiation() -> None:
    assert accept_language(FRENCH) == ["fr-CH", "fr", "en"]
    assert accept_language("en;q=0.2, de;q=0.7, fr") == ["fr", "de", "en"]
    assert accept_language("fr;q=x, <script>, en-US") == ["en-US"]
    assert accept_language(None) == []
    assert accept_language(",".join(["de"] * 100) + ",fr") == ["de"] * 32
    assert negotiate(["fr-CH"], ["en", "fr"]) == "fr"
    assert negotiate(["pt-BR", "de"], ["en", "fr"]) is None
    assert locales() == ("en", "fr")


def test_a_regional_translation_of_the_page_language_is_preferred() -> None:
    def asking(header: str) -> Request:
        return Request({"type": "http", "headers": [(b"accept-language", header.encode())]})

    language = Languages().of(asking("fr-CA, en;q=0.5, fr-BE;q=0.4"))
    assert (language.tag, language.wanted) == ("fr", ("fr-CA", "fr-BE", "fr"))
    quebec = define_connector(
        {**tricky().to_wire(), "translations": {"fr": {"name": "Rusé"}, "fr-CA": {"name": "Futé"}}}
    )
    assert language.localize(quebec).name == "Futé"
    assert Languages().of(asking("fr")).localize(quebec).name == "Rusé"
    assert Languages("fr_CA").of(asking("en")).wanted == ("fr-CA", "fr")


# --- the host's choice --------------------------------------------------------------------


def test_a_host_may_force_the_language() -> None:
    with TestClient(build(locale="fr"), headers={"x-tenant": "t1"}) as forced:
        html = forced.get("/integrations", headers={"accept-language": "en"}).text
        assert lang(html) == "fr"
        assert "Evencio" in html
        assert "Importez vos événements" in card(html, "evencio")


def test_a_host_may_choose_the_language_from_its_own_user_preference() -> None:
    def preference(request: Request) -> str | None:
        return request.headers.get("x-user-language")  # (a host reads its user's settings)

    with TestClient(build(locale=preference), headers={"x-tenant": "t1"}) as client:
        assert lang(client.get("/integrations", headers={"x-user-language": "fr"}).text) == "fr"
        # None, or a language without a catalogue: Accept-Language decides.
        assert lang(client.get("/integrations", headers={"accept-language": "fr"}).text) == "fr"
        assert lang(client.get("/integrations").text) == "en"
        both = {"x-user-language": "de", "accept-language": "fr"}
        assert lang(client.get("/integrations", headers=both).text) == "fr"


def test_forcing_a_language_without_a_catalogue_fails_at_start() -> None:
    with pytest.raises(ValueError, match="no catalogue for locale 'de'; there are: en, fr"):
        build(locale="de")
    assert Languages("fr-BE").option == "fr-BE"  # a regional tag is served by its language


# --- what is translated -------------------------------------------------------------------


def test_the_evencio_card_and_details_are_french(client: TestClient) -> None:
    french = client.get("/integrations", headers={"accept-language": FRENCH}).text
    evencio = card(french, "evencio")
    assert ">Evencio</a></h3>" in evencio
    assert "Importez vos événements, lieux et listes d&#39;invités Evencio" in evencio
    assert "Bêta" in evencio
    assert 'Connecter<span class="sr"> Evencio</span>' in evencio
    assert 'Détails<span class="sr"> sur Evencio</span>' in evencio
    english = card(client.get("/integrations").text, "evencio")
    assert "Bring your Evencio events" in english

    details = client.get("/integrations/evencio", headers={"accept-language": "fr"}).text
    assert '<h2 id="about-title">À propos</h2>' in details
    assert "<dt>Catégorie</dt><dd>Événements</dd>" in details
    assert "Enregistrer un client OAuth dans Evencio" in details  # its set-up steps


def test_search_finds_a_card_by_its_translated_and_its_english_words(client: TestClient) -> None:
    fr = {"accept-language": "fr"}
    assert "evencio" in card_ids(client.get("/integrations?q=importez", headers=fr).text)
    assert "evencio" in card_ids(client.get("/integrations?q=bring", headers=fr).text)
    assert "evencio" not in card_ids(client.get("/integrations?q=importez").text)


def test_plural_forms_of_the_count(client: TestClient) -> None:
    fr = {"accept-language": "fr"}
    assert "Affichage de 1 sur 13 intégrations" in (
        client.get("/integrations?q=evencio", headers=fr).text
    )
    registry = build_registry("http://127.0.0.1:9")
    only = Registry()
    only.register(registry.get("acme-plain"))
    settings = Settings(
        database_url="memory://", secret_keys=(generate_key(),), public_url="http://testserver"
    )
    app = create_app(
        connections=Connections(only, MemoryStore(), settings), authenticator=lambda r: "t"
    )
    with TestClient(app) as one:
        assert "Affichage de 1 sur 1 intégration<" in one.get("/integrations", headers=fr).text
        assert "Showing 1 of 1 integration<" in one.get("/integrations").text
        strings = one.get("/integrations", headers=fr).text.split('id="cc-strings">')[1]
        assert '"count": "Affichage de {shown} sur 1 int\\u00e9gration"' in strings


def test_the_number_of_connected_accounts_takes_its_plural(harness: Harness) -> None:
    with harness.browser() as browser:
        browser.headers["accept-language"] = "fr"
        connect_multi(harness, browser, "org-1")
        one = card(browser.get(f"{harness.origin}/integrations").text, "acme-multi")
        connect_multi(harness, browser, "org-2")
        two = browser.get(f"{harness.origin}/integrations").text
    assert "<strong>1 compte connecté</strong>" in one
    assert "<strong>2 comptes connectés</strong>" in card(two, "acme-multi")
    assert "Ajouter un autre compte" in two
    assert 'aria-label="Connexions Acme-Multi"' in two


def test_plural_rules_of_the_catalogue() -> None:
    french = catalogue("fr")
    singular, plural = "%(count)s connected", "%(count)s connected"
    assert french.ngettext(singular, plural, 0) == "%(count)s compte connecté"
    assert french.ngettext(singular, plural, 1) == "%(count)s compte connecté"
    assert french.ngettext(singular, plural, 2) == "%(count)s comptes connectés"
    failed = "%(count)s connector plugin failed to load"
    assert "n'ont pas pu" in french.ngettext(failed, failed + "s", 3)


def test_outcome_and_failure_notices_are_translated(client: TestClient) -> None:
    fr = {"accept-language": "fr"}
    token = client.get("/api/integrations/csrf").json()["csrfToken"]
    client.post(
        "/api/integrations/acme-key/connect",
        data={"api_key": "sk_live_0123456789abcdef", "csrf_token": token},
    )
    html = client.get("/integrations?connector=acme-key&result=connected", headers=fr).text
    assert "Acme-Key est connecté." in html
    acme = card(html, "acme-key")
    assert "<strong>Connecté</strong>" in acme
    assert "clé ••••cdef" in acme
    assert 'Déconnecter<span class="sr"> Acme-Key</span>' in acme
    denied = client.get("/integrations?connector=evencio&error=access_denied", headers=fr).text
    assert "La connexion à Evencio a été annulée chez le fournisseur." in denied
    unknown = client.get("/integrations?error=unknown_connector", headers=fr).text
    assert "Cette intégration n&#39;est pas installée ici." in unknown

    confirm = client.get(
        "/api/integrations/acme-key/disconnect", headers={**fr, "accept": "text/html"}
    )
    assert lang(confirm.text) == "fr"
    assert "Déconnecter Acme-Key\u00a0?" in confirm.text
    assert "Ses identifiants sont supprimés de ce serveur" in confirm.text
    assert ">Annuler</a>" in confirm.text


def test_the_connect_form_is_french(client: TestClient) -> None:
    page = client.get(
        "/api/integrations/acme-basic/connect",
        headers={"accept-language": "fr", "accept": "text/html"},
    )
    html = page.text
    assert lang(html) == "fr"
    assert "<title>Connecter Acme Basic</title>" in html
    assert "← Intégrations" in html
    assert "Authentification\u00a0: Nom d&#39;utilisateur et mot de passe." in html
    token = client.get("/api/integrations/csrf").json()["csrfToken"]
    failed = client.post(
        "/api/integrations/acme-basic/connect",
        data={"csrf_token": token},
        headers={"accept-language": "fr", "accept": "text/html"},
    )
    assert failed.status_code == 422
    assert "<title>Erreur\u00a0: connecter Acme Basic</title>" in failed.text
    assert "Certaines valeurs sont à corriger" in failed.text


def test_pages_without_a_connector_or_a_user_are_french(client: TestClient) -> None:
    fr = {"accept-language": "fr"}
    missing = client.get("/integrations/nope", headers=fr)
    assert missing.status_code == 404
    assert "Intégration introuvable" in missing.text
    signed_out = client.get("/integrations", headers={**fr, "x-tenant": ""})
    assert signed_out.status_code == 401
    assert "Identifiez-vous pour connecter une intégration" in signed_out.text


def test_translated_strings_are_still_escaped(client: TestClient) -> None:
    fr = {"accept-language": "fr"}
    for path in (
        "/integrations",
        "/integrations/tricky",
        "/integrations?connector=tricky&result=connected",
    ):
        html = client.get(path, headers=fr).text
        assert "<img src=x" not in html
        assert "<script>alert" not in html
        assert "Rusé &lt;img src=x onerror=alert(1)&gt;" in html
    notice = client.get("/integrations?connector=tricky&result=connected", headers=fr).text
    assert "Rusé &lt;img src=x onerror=alert(1)&gt; est connecté." in notice
    strings = client.get("/integrations", headers=fr).text.split('id="cc-strings">')[1]
    assert "<" not in strings.split("</script>")[0]  # the JSON block holds no markup


def test_json_errors_stay_english(client: TestClient) -> None:
    headers = {"accept-language": "fr", "accept": "application/json"}
    unknown = client.get("/api/integrations/nope/status", headers=headers)
    assert unknown.json() == {
        "error": "unknown_connector",
        "message": "no connector with id 'nope'",
    }
    refused = client.post("/api/integrations/acme-key/disconnect", headers=headers)
    english = client.post(
        "/api/integrations/acme-key/disconnect", headers={"accept": "application/json"}
    )
    assert refused.json() == english.json()
    assert refused.json()["error"] == "csrf_failed"


def test_the_json_catalogue_speaks_the_asked_language(client: TestClient) -> None:
    def evencio(response: Any) -> dict[str, Any]:
        assert response.status_code == 200, response.text
        (found,) = [c for c in response.json()["connectors"] if c["id"] == "evencio"]
        return found  # type: ignore[no-any-return]

    english = evencio(client.get("/api/integrations"))
    assert english["summary"].startswith("Bring your Evencio events")
    asked = evencio(client.get("/api/integrations?locale=fr"))
    assert asked["summary"].startswith("Importez vos événements")
    assert asked["setup"][0]["title"] == "Enregistrer un client OAuth dans Evencio"
    header = client.get("/api/integrations", headers={"accept-language": FRENCH})
    assert evencio(header)["summary"].startswith("Importez vos événements")
    assert "Accept-Language" in header.headers["vary"]
    # ?locale= wins over the header.
    back = client.get("/api/integrations?locale=en", headers={"accept-language": "fr"})
    assert evencio(back)["summary"].startswith("Bring your Evencio events")
    bad = client.get("/api/integrations?locale=%3Cscript%3E")
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_request"


def test_every_category_status_and_flow_label_is_translated() -> None:
    assert set(CATEGORY_LABELS) == {c.value for c in Category}
    assert set(STATUS_LABELS) == {s.value for s in Status}
    french = catalogue("fr")
    for flow in FLOWS.values():
        assert flow.label in FLOW_TEXTS, f"add {flow.label!r} to FLOW_TEXTS in web/_i18n.py"
    for text in [*CATEGORY_LABELS.values(), *STATUS_LABELS.values(), *FLOW_TEXTS]:
        assert french.gettext(text) != text or text in ("OAuth", "Marketing"), text


def test_the_state_line_of_a_template_renders_its_plural() -> None:
    env = environment()
    template = env.from_string(
        '{% import "_macros.html" as m with context %}{{ m.state_line(card) }}'
    )
    card_data = {
        "multiple": True,
        "connectable": True,
        "state": {"connected": True},
        "entries": [{"connected": True}] * 3,
    }
    english = template.render(card=card_data)
    assert "3 connected" in english
    languages = Languages()
    request = Request({"type": "http", "headers": [(b"accept-language", b"fr")], "state": {}})
    with speaking(languages.of(request)):
        assert "3 comptes connectés" in template.render(card=card_data)


# --- the catalogues -----------------------------------------------------------------------


def entries(catalog: Catalog) -> dict[str, Message]:
    return {str(key(m)): m for m in catalog if m.id}


def key(message: Message) -> str:
    return message.id[0] if isinstance(message.id, tuple) else str(message.id)


def placeholders(text: str) -> list[str]:
    """``%(name)s`` and ``{name}`` placeholders, and HTML tags, of a message."""
    return sorted(re.findall(r"%\(\w+\)[sd]|\{\w+\}|</?[a-z]+(?:\s[^>]*)?>", text))


def read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=locale)


@pytest.mark.parametrize("locale", [tag for tag in locales() if tag != "en"])
def test_the_catalogue_is_complete(locale: str) -> None:
    template = entries(read(POT))
    catalog = read(LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po", locale)
    translated = entries(catalog)
    problems = []
    for msgid, message in template.items():
        found = translated.get(msgid)
        if found is None:
            problems.append(f"missing (run pybabel update): {msgid!r}")
            continue
        forms = [
            str(s or "")
            for s in (found.string if isinstance(found.string, tuple) else [found.string])
        ]
        if found.fuzzy or not all(forms):
            problems.append(f"not translated{' (fuzzy)' if found.fuzzy else ''}: {msgid!r}")
            continue
        originals = [
            str(s) for s in (message.id if isinstance(message.id, tuple) else [message.id])
        ]
        expected = placeholders(originals[-1])
        for form in forms:
            if placeholders(form) != expected:
                problems.append(
                    f"placeholders or tags differ: {msgid!r} -> {form!r} "
                    f"({placeholders(form)} != {expected})"
                )
        if isinstance(message.id, tuple) and len(forms) != catalog.num_plurals:
            problems.append(f"needs {catalog.num_plurals} plural forms: {msgid!r}")
    problems += [f"not in the template (obsolete): {m!r}" for m in set(translated) - set(template)]
    assert not problems, "\n".join(problems)


def test_the_template_is_up_to_date_with_the_sources(tmp_path: Path) -> None:
    out = tmp_path / "messages.pot"
    args = [a if a != "connectors_core/web/locale/messages.pot" else str(out) for a in EXTRACT]
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    fresh, committed = entries(read(out)), entries(read(POT))
    new = sorted(set(fresh) - set(committed))
    gone = sorted(set(committed) - set(fresh))
    advice = "messages.pot is out of date: run the extraction in docs/i18n.md, then update"
    assert not new, f"{advice}; new: {new}"
    assert not gone, f"{advice}; gone: {gone}"
    plural = {m: fresh[m].id for m in fresh if isinstance(fresh[m].id, tuple)}
    assert plural == {m: committed[m].id for m in committed if isinstance(committed[m].id, tuple)}


def test_the_documented_extraction_is_the_tested_one() -> None:
    text = (ROOT / "docs" / "i18n.md").read_text(encoding="utf-8")
    flat = " ".join(text.replace("\\\n", " ").split())
    quoted = [f'"{a}"' if " " in a else a for a in EXTRACT]
    command = " ".join(["pybabel", *quoted])
    assert command in flat, command


def test_no_compiled_catalogue_is_in_the_package() -> None:
    assert not list(LOCALE_DIR.rglob("*.mo"))


# --- in a browser -------------------------------------------------------------------------


@pytest.mark.slow
def test_a_french_browser_gets_french_pages_and_script_text(
    browser: Browser, harness: Harness
) -> None:
    context = browser.new_context(
        base_url=harness.origin,
        locale="fr-FR",
        extra_http_headers={TENANT_HEADER: "tenant-a"},
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto("/integrations")
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        expect(page.get_by_role("heading", level=1)).to_have_text("Intégrations")
        expect(page.locator("#card-evencio .summary")).to_contain_text("Importez vos événements")
        total = page.locator(".grid > .card").count()
        expect(page.locator("#count")).to_have_text(
            f"Affichage de {total} sur {total} intégrations"
        )
        # Filtering as you type: the script writes the count in French.
        page.get_by_label("Rechercher des intégrations").fill("evencio")
        expect(page.locator("#count")).to_have_text(f"Affichage de 1 sur {total} intégrations")

        page.goto("/api/integrations/acme-basic/connect")
        expect(page).to_have_title("Connecter Acme Basic")
        expect(page.get_by_role("button", name="Connecter")).to_be_visible()
        expect(page.locator(".help").last).to_contain_text(
            "Les identifiants restent sur le serveur"
        )
    finally:
        context.close()


def test_an_async_locale_function_is_refused_when_the_app_is_made() -> None:
    async def preference(request: object) -> str:
        return "fr"

    settings = Settings(database_url="memory://", secret_keys=(generate_key(),))
    with pytest.raises(ValueError, match="synchronous function"):
        create_app(Registry(), settings=settings, locale=preference)  # type: ignore[arg-type]
