"""The Evencio connector manifest."""

from connectors_core import define_connector

AUTH_BASE_URL = "https://auth.evenc.io"
"""The production Evencio authorization server (``CONNECTORS_EVENCIO_BASE_URL`` overrides it)."""

API_BASE_URL = "https://api.evenc.io"
"""The production Evencio API (``CONNECTORS_EVENCIO_API_BASE_URL`` overrides it)."""

EVENCIO = define_connector(
    id="evencio",
    name="Evencio",
    summary="Bring your Evencio events, venues and guest lists into your campaigns.",
    description=(
        "Connect your Evencio organization to use its events, venues and guest counts "
        "in marketing assets and campaigns. An organization admin approves access once "
        "with OAuth; the app reads event data with read-only scopes and never sees or "
        "stores your Evencio password."
    ),
    category="events",
    status="beta",
    auth={
        "type": "oauth",
        "authorizeUrl": f"{AUTH_BASE_URL}/oauth/authorize",
        "tokenUrl": f"{AUTH_BASE_URL}/api/oauth/token",
        # Read-only, one scope per capability, plus offline_access for refresh tokens.
        "scopes": ["events:read", "venues:read", "guests:read", "offline_access"],
        "pkce": True,
    },
    capabilities=[
        {"id": "event-sync", "label": "Event sync: schedules, descriptions and status"},
        {"id": "venue-details", "label": "Venue details: names and addresses"},
        {"id": "guest-lists", "label": "Guest lists: counts and segments"},
    ],
    setup=[
        {
            "title": "Register an OAuth client in Evencio",
            "description": (
                "In Evencio, create an OAuth client for your marketing app with the "
                "redirect URI <public URL>/api/integrations/evencio/callback."
            ),
        },
        {
            "title": "Configure the server",
            "description": (
                "Set CONNECTORS_EVENCIO_CLIENT_ID and CONNECTORS_EVENCIO_CLIENT_SECRET "
                "on the server. The secret stays server-side."
            ),
        },
        {
            "title": "Connect",
            "description": ("An organization admin clicks Connect and approves access in Evencio."),
        },
    ],
    api={
        "baseUrl": API_BASE_URL,
        "headers": {"Accept": "application/json"},
        # A rate limit (429) says when to come back in Retry-After; a gateway hiccup
        # (502/503/504) is worth another try. A 500 is a bug: trying again won't help.
        "retry": {
            "statuses": [429, 502, 503, 504],
            "retryAfterHeaders": ["Retry-After"],
            "maxAttempts": 4,
            "maxWaitSeconds": 30,
        },
        "tokenExpiredStatuses": [401],
    },
    # Proves a new connection and finds whose it is: the organization and user that approved.
    verify={
        "method": "GET",
        "path": "/oauth/status",
        "expect": [200],
        "account": {"organizationId": "organizationId", "userId": "userId"},
    },
    docs_path="https://evenc.io/docs/integrations/connectors-core",
    tags=["official", "oauth", "events"],
    publisher={"name": "Evencio", "url": "https://evenc.io"},
    connection={
        "startPath": "/api/integrations/evencio/connect",
        "statusPath": "/api/integrations/evencio/status",
        "disconnectPath": "/api/integrations/evencio/disconnect",
    },
    # In this package (shipped in the wheel), served by connectors-core after its checks.
    icon="icon.svg",
    translations={
        "fr": {
            "name": "Evencio",
            "summary": (
                "Importez vos événements, lieux et listes d'invités Evencio dans vos campagnes."
            ),
            "description": (
                "Connectez votre organisation Evencio pour utiliser ses événements, ses lieux "
                "et le nombre de ses invités dans vos supports et campagnes marketing. Un "
                "administrateur de l'organisation autorise l'accès une seule fois avec OAuth ; "
                "l'application lit les données des événements avec des droits en lecture "
                "seule et ne voit ni ne conserve jamais votre mot de passe Evencio."
            ),
            "setup": [
                {
                    "title": "Enregistrer un client OAuth dans Evencio",
                    "description": (
                        "Dans Evencio, créez un client OAuth pour votre application marketing "
                        "avec l'URI de redirection "
                        "<URL publique>/api/integrations/evencio/callback."
                    ),
                },
                {
                    "title": "Configurer le serveur",
                    "description": (
                        "Définissez CONNECTORS_EVENCIO_CLIENT_ID et "
                        "CONNECTORS_EVENCIO_CLIENT_SECRET sur le serveur. Le secret reste "
                        "côté serveur."
                    ),
                },
                {
                    "title": "Se connecter",
                    "description": (
                        "Un administrateur de l'organisation clique sur Connecter et autorise "
                        "l'accès dans Evencio."
                    ),
                },
            ],
        },
    },
)
"""The validated Evencio manifest."""
