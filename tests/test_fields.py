"""Connection fields: checking submitted values, defaults, and filling URL templates."""

from __future__ import annotations

import random
import string
from typing import Any
from urllib.parse import urlsplit

import pytest

from connectors_core._fields import (
    MAX_VALUE,
    FieldError,
    FieldErrors,
    Placeholder,
    TemplateError,
    check_default,
    check_value,
    check_values,
    placeholders,
    resolve_url,
)
from connectors_core._manifest import Field, FieldType

T = FieldType


def field(type: FieldType = T.TEXT, id: str = "value", **rules: Any) -> Field:
    return Field(id=id, label=id.title(), type=type, **rules)


def rejects(the_field: Field, raw: str | None) -> str:
    """The message check_value gives for ``raw``; fails the test when it is accepted."""
    with pytest.raises(FieldError) as caught:
        check_value(the_field, raw)
    assert caught.value.field_id == the_field.id
    return caught.value.message


# --- placeholders (unchanged behaviour) -----------------------------------------


def test_placeholders_lists_the_names_in_order() -> None:
    assert list(placeholders("https://{shop}.example.com/{dc}/x?q={shop}")) == [
        "shop",
        "dc",
        "shop",
    ]


@pytest.mark.parametrize(
    "template",
    ["https://{Shop}.example.com", "https://{}.example.com", "https://{shop.example.com"],
    ids=["upper-case-name", "empty-name", "unmatched-brace"],
)
def test_placeholders_rejects_invalid_braces(template: str) -> None:
    with pytest.raises(Placeholder):
        list(placeholders(template))


# --- good values, per type ------------------------------------------------------

GOOD = [
    ("text", field(), "hello world", "hello world"),
    ("text-stripped", field(), "  padded\t\n", "padded"),
    ("text-unicode", field(), "Zoë's café", "Zoë's café"),
    ("text-min-length", field(min_length=3), "abc", "abc"),
    ("text-max-length", field(max_length=3), "abc", "abc"),
    ("text-pattern", field(pattern=r"[a-z]+-[0-9]+"), "shop-42", "shop-42"),
    ("secret", field(T.SECRET), " s3cr3t/+= ", "s3cr3t/+="),
    ("url-https", field(T.URL), "https://jira.example.com", "https://jira.example.com"),
    (
        "url-path-query-port",
        field(T.URL),
        "https://api.example.com:8443/v1/x?a=1&b=%20",
        "https://api.example.com:8443/v1/x?a=1&b=%20",
    ),
    ("url-http-localhost", field(T.URL), "http://localhost:8080/x", "http://localhost:8080/x"),
    ("url-http-127-8", field(T.URL), "http://127.8.9.10/", "http://127.8.9.10/"),
    ("url-http-ipv6-loopback", field(T.URL), "http://[::1]:9000/", "http://[::1]:9000/"),
    ("url-https-ip", field(T.URL), "https://203.0.113.7/api", "https://203.0.113.7/api"),
    ("url-https-ipv6", field(T.URL), "https://[2001:db8::1]:8443/", "https://[2001:db8::1]:8443/"),
    ("url-upper-scheme", field(T.URL), "HTTPS://Example.com/", "HTTPS://Example.com/"),
    (
        "url-pattern",
        field(T.URL, pattern=r"https://.*\.atlassian\.net"),
        "https://a.atlassian.net",
        "https://a.atlassian.net",
    ),
    ("hostname", field(T.HOSTNAME), "jira.example.com", "jira.example.com"),
    ("hostname-lowercased", field(T.HOSTNAME), "Jira.Example.COM", "jira.example.com"),
    ("hostname-punycode", field(T.HOSTNAME), "xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("hostname-63-label", field(T.HOSTNAME), "a" * 63 + ".com", "a" * 63 + ".com"),
    ("hostname-digits-not-last", field(T.HOSTNAME), "123.example.com", "123.example.com"),
    (
        "hostname-253",
        field(T.HOSTNAME),
        ".".join(["a" * 63] * 3 + ["b" * 61]),
        ".".join(["a" * 63] * 3 + ["b" * 61]),
    ),
    ("email", field(T.EMAIL), "ops@example.com", "ops@example.com"),
    (
        "email-plus-dots",
        field(T.EMAIL),
        "first.last+tag@mail.example.co.uk",
        "first.last+tag@mail.example.co.uk",
    ),
    ("integer", field(T.INTEGER), "42", 42),
    ("integer-signed", field(T.INTEGER), "-7", -7),
    ("integer-plus", field(T.INTEGER), "+7", 7),
    ("integer-leading-zero", field(T.INTEGER), "007", 7),
    ("integer-18-digits", field(T.INTEGER), "9" * 18, int("9" * 18)),
    ("boolean-true", field(T.BOOLEAN), "true", True),
    ("boolean-TRUE", field(T.BOOLEAN), "TRUE", True),
    ("boolean-on", field(T.BOOLEAN), "on", True),
    ("boolean-yes", field(T.BOOLEAN), "Yes", True),
    ("boolean-1", field(T.BOOLEAN), "1", True),
    ("boolean-false", field(T.BOOLEAN), "false", False),
    ("boolean-off", field(T.BOOLEAN), "OFF", False),
    ("boolean-no", field(T.BOOLEAN), "no", False),
    ("boolean-0", field(T.BOOLEAN), "0", False),
    ("choice", field(T.CHOICE, choices=("us1", "eu1")), "eu1", "eu1"),
    ("choice-stripped", field(T.CHOICE, choices=("us1", "eu1")), " us1 ", "us1"),
]


@pytest.mark.parametrize(
    ("the_field", "raw", "expected"),
    [row[1:] for row in GOOD],
    ids=[row[0] for row in GOOD],
)
def test_a_good_value_is_accepted_and_normalised(the_field: Field, raw: str, expected: Any) -> None:
    value = check_value(the_field, raw)
    assert value == expected
    assert type(value) is type(expected)


# --- wrong values, per type -----------------------------------------------------

WRONG = [
    ("text-too-short", field(min_length=3), "ab", "at least 3 characters"),
    ("text-too-long", field(max_length=3), "abcd", "at most 3 characters"),
    ("text-pattern", field(pattern=r"[a-z]+"), "abc1", "expected format"),
    ("text-pattern-is-full-match", field(pattern=r"[a-z]+"), "abc\u00e9", "expected format"),
    ("text-pattern-not-prefix", field(pattern=r"[a-z]+"), "1abc", "expected format"),
    ("text-invalid-pattern", field(pattern=r"(unclosed"), "abc", "invalid pattern"),
    ("secret-pattern", field(T.SECRET, pattern=r"sk_[a-z0-9]+"), "pk_123", "expected format"),
    ("url-no-scheme", field(T.URL), "jira.example.com", "starting with https://"),
    ("url-ftp", field(T.URL), "ftp://example.com/", "starting with https://"),
    ("url-javascript", field(T.URL), "javascript:alert(1)", "starting with https://"),
    ("url-scheme-relative", field(T.URL), "//example.com/", "starting with https://"),
    ("url-one-slash", field(T.URL), "https:/example.com", "starting with https://"),
    ("url-http-remote", field(T.URL), "http://example.com/", "must use https"),
    ("url-http-localhost-suffix", field(T.URL), "http://localhost.evil.com/", "must use https"),
    ("url-http-127-decimal", field(T.URL), "http://2130706433/", "invalid host"),
    ("url-http-127-short", field(T.URL), "http://127.1/", "invalid host"),
    ("url-http-hex-ip", field(T.URL), "http://0x7f.0.0.1/", "invalid host"),
    ("url-http-mapped-v6", field(T.URL), "http://[::ffff:127.0.0.1]/", "must use https"),
    ("url-userinfo", field(T.URL), "https://user:pw@example.com/", "user name or password"),
    ("url-at-host", field(T.URL), "https://example.com@evil.com/", "user name or password"),
    ("url-space", field(T.URL), "https://exa mple.com/", "spaces"),
    ("url-nbsp", field(T.URL), "https://example.com/\u00a0x", "spaces"),
    ("url-no-host", field(T.URL), "https:///path", "host"),
    ("url-port-only", field(T.URL), "https://:443/", "host"),
    ("url-bad-port", field(T.URL), "https://example.com:99999/", "not a valid URL"),
    ("url-port-zero", field(T.URL), "https://example.com:0/", "invalid port"),
    ("url-empty-port", field(T.URL), "https://example.com:/", "invalid port"),
    ("url-backslash", field(T.URL), "https://example.com\\@evil.com/", "characters allowed"),
    ("url-non-ascii-host", field(T.URL), "https://ex\u0430mple.com/", "characters allowed"),
    ("url-angle-bracket", field(T.URL), "https://example.com/<script>", "characters allowed"),
    ("url-bad-percent", field(T.URL), "https://example.com/%zz", "characters allowed"),
    ("url-underscore-host", field(T.URL), "https://bad_host.example.com/", "invalid host"),
    ("url-fragment", field(T.URL), "https://example.com/#x", "fragment"),
    ("url-zone-id", field(T.URL), "http://[fe80::1%25eth0]/", "invalid host"),
    ("url-ipvfuture", field(T.URL), "https://[v1.x]/", "IPv6 address"),
    ("url-brackets-not-ipv6", field(T.URL), "https://[1:2]/", "not a valid URL"),
    ("url-unspecified-ipv4", field(T.URL), "https://0.0.0.0:6379/", "unspecified"),
    ("url-unspecified-ipv6", field(T.URL), "https://[::]/", "unspecified"),
    ("url-multicast", field(T.URL), "https://224.0.0.1/", "multicast"),
    ("url-leading-zero-ip", field(T.URL), "https://010.0.0.1/", "invalid host"),
    ("url-ip-five-parts", field(T.URL), "https://1.2.3.4.5/", "invalid host"),
    (
        "url-pattern",
        field(T.URL, pattern=r"https://.*\.atlassian\.net"),
        "https://evil.com",
        "expected format",
    ),
    ("url-too-long-rule", field(T.URL, max_length=20), "https://example.com/abc", "at most 20"),
    ("hostname-cyrillic-o", field(T.HOSTNAME), "sh\u043ep.example.com", "only ASCII letters"),
    ("hostname-kelvin-sign", field(T.HOSTNAME), "\u212aey.example.com", "only ASCII letters"),
    ("hostname-underscore", field(T.HOSTNAME), "my_host.example.com", "only ASCII letters"),
    ("hostname-port", field(T.HOSTNAME), "example.com:444", "only ASCII letters"),
    ("hostname-path", field(T.HOSTNAME), "example.com/x", "only ASCII letters"),
    ("hostname-userinfo", field(T.HOSTNAME), "evil.com@x", "only ASCII letters"),
    ("hostname-url", field(T.HOSTNAME), "https://example.com", "only ASCII letters"),
    ("hostname-space", field(T.HOSTNAME), "exa mple.com", "only ASCII letters"),
    ("hostname-ipv4", field(T.HOSTNAME), "127.0.0.1", "not an IP address"),
    ("hostname-ipv4-public", field(T.HOSTNAME), "203.0.113.7", "not an IP address"),
    ("hostname-decimal-ip", field(T.HOSTNAME), "2130706433", "not an IP address"),
    ("hostname-hex-ip", field(T.HOSTNAME), "0x7f.1", "not an IP address"),
    ("hostname-ipv6", field(T.HOSTNAME), "::1", "only ASCII letters"),
    ("hostname-leading-hyphen", field(T.HOSTNAME), "-a.example.com", "hyphen"),
    ("hostname-trailing-hyphen", field(T.HOSTNAME), "a-.example.com", "hyphen"),
    ("hostname-empty-label", field(T.HOSTNAME), "a..example.com", "1 to 63"),
    ("hostname-trailing-dot", field(T.HOSTNAME), "example.com.", "1 to 63"),
    ("hostname-leading-dot", field(T.HOSTNAME), ".example.com", "1 to 63"),
    ("hostname-64-label", field(T.HOSTNAME), "a" * 64 + ".com", "1 to 63"),
    ("hostname-254", field(T.HOSTNAME), ".".join(["a" * 63] * 3 + ["b" * 62]), "at most 253"),
    (
        "hostname-pattern",
        field(T.HOSTNAME, pattern=r".*\.atlassian\.net"),
        "evil.com",
        "expected format",
    ),
    ("email-no-at", field(T.EMAIL), "ops.example.com", "e-mail address"),
    ("email-two-at", field(T.EMAIL), "a@b@example.com", "e-mail address"),
    ("email-no-tld", field(T.EMAIL), "ops@localhost", "e-mail address"),
    ("email-space", field(T.EMAIL), "o ps@example.com", "e-mail address"),
    ("email-empty-local", field(T.EMAIL), "@corp.test", "e-mail address"),
    ("email-double-dot", field(T.EMAIL), "a..b@example.com", "e-mail address"),
    ("email-ip-domain", field(T.EMAIL), "ops@127.0.0.1", "e-mail address"),
    ("email-non-ascii", field(T.EMAIL), "op\u0455@example.com", "e-mail address"),
    (
        "email-too-long",
        field(T.EMAIL),
        "a" * 64 + "@" + ".".join(["b" * 60] * 4) + ".com",
        "e-mail address",
    ),
    ("email-long-local", field(T.EMAIL), "a" * 65 + "@example.com", "e-mail address"),
    ("integer-word", field(T.INTEGER), "twelve", "whole number"),
    ("integer-float", field(T.INTEGER), "1.5", "whole number"),
    ("integer-19-digits", field(T.INTEGER), "1" * 19, "whole number"),
    ("integer-arabic-digits", field(T.INTEGER), "\u0663", "whole number"),
    ("integer-underscore", field(T.INTEGER), "1_000", "whole number"),
    ("integer-sign-only", field(T.INTEGER), "-", "whole number"),
    ("integer-inner-space", field(T.INTEGER), "1 000", "whole number"),
    ("boolean-maybe", field(T.BOOLEAN), "maybe", "true or false"),
    ("boolean-2", field(T.BOOLEAN), "2", "true or false"),
    ("choice-unknown", field(T.CHOICE, choices=("us1", "eu1")), "ap1", "one of: us1, eu1"),
    ("choice-case", field(T.CHOICE, choices=("us1", "eu1")), "US1", "one of: us1, eu1"),
    ("choice-none-declared", field(T.CHOICE), "x", "one of"),
]


@pytest.mark.parametrize(
    ("the_field", "raw", "message_part"),
    [row[1:] for row in WRONG],
    ids=[row[0] for row in WRONG],
)
def test_a_wrong_value_is_rejected_with_a_plain_message(
    the_field: Field, raw: str, message_part: str
) -> None:
    message = rejects(the_field, raw)
    assert message_part in message
    assert raw.strip() not in message


# --- characters and length, for every type --------------------------------------

ALL_TYPES = [
    field(T.TEXT),
    field(T.SECRET),
    field(T.URL),
    field(T.HOSTNAME),
    field(T.EMAIL),
    field(T.INTEGER),
    field(T.BOOLEAN),
    field(T.CHOICE, choices=("ab",)),
]
GOOD_BY_TYPE = {
    T.TEXT: "abc",
    T.SECRET: "abc",
    T.URL: "https://example.com/",
    T.HOSTNAME: "example.com",
    T.EMAIL: "a@example.com",
    T.INTEGER: "12",
    T.BOOLEAN: "true",
    T.CHOICE: "ab",
}
CONTROLS = {
    "nul": "\x00",
    "newline-inside": "\n",
    "escape": "\x1b",
    "del": "\x7f",
    "c1-nel": "\x85",
    "zero-width-space": "\u200b",
    "right-to-left-override": "\u202e",
    "byte-order-mark": "\ufeff",
    "line-separator": "\u2028",
    "lone-surrogate": "\ud800",
}


@pytest.mark.parametrize("the_field", ALL_TYPES, ids=[f.type.value for f in ALL_TYPES])
@pytest.mark.parametrize("char", CONTROLS.values(), ids=CONTROLS.keys())
def test_a_control_character_is_rejected_in_every_type(the_field: Field, char: str) -> None:
    good = GOOD_BY_TYPE[the_field.type]
    raw = good[:1] + char + good[1:]
    assert rejects(the_field, raw) == "must not contain control characters"


@pytest.mark.parametrize("the_field", ALL_TYPES, ids=[f.type.value for f in ALL_TYPES])
def test_a_value_longer_than_max_value_is_rejected_in_every_type(the_field: Field) -> None:
    assert rejects(the_field, "1" * (MAX_VALUE + 1)) == f"must be at most {MAX_VALUE} characters"


def test_control_characters_are_reported_before_length() -> None:
    assert rejects(field(), "\x00" * (MAX_VALUE + 1)) == "must not contain control characters"


def test_a_value_of_exactly_max_value_is_accepted() -> None:
    assert check_value(field(), "x" * MAX_VALUE) == "x" * MAX_VALUE


def test_a_larger_max_length_does_not_lift_max_value() -> None:
    assert "at most 2048" in rejects(field(max_length=10_000), "x" * (MAX_VALUE + 1))


def test_surrounding_whitespace_does_not_count_towards_the_length() -> None:
    assert check_value(field(max_length=3), "  abc  ") == "abc"


def test_the_length_limit_counts_characters_not_bytes() -> None:
    assert check_value(field(max_length=3), "\u00e9\u00e9\u00e9") == "\u00e9\u00e9\u00e9"


# --- empty, required, optional, defaults ----------------------------------------

EMPTY = [
    ("required-missing", field(), None, FieldError),
    ("required-empty", field(), "", FieldError),
    ("required-whitespace", field(), "  \t ", FieldError),
    ("optional-missing", field(required=False), None, None),
    ("optional-empty", field(required=False), "   ", None),
    ("optional-with-min-length", field(required=False, min_length=5), "", None),
    ("default-missing", field(default="eu1"), None, "eu1"),
    ("default-empty", field(default="eu1"), " ", "eu1"),
    ("default-optional", field(required=False, default="eu1"), None, "eu1"),
    ("integer-default", field(T.INTEGER, default=30), None, 30),
    (
        "hostname-default-lowercased",
        field(T.HOSTNAME, default="Api.Example.com"),
        "",
        "api.example.com",
    ),
    ("choice-default", field(T.CHOICE, choices=("us1", "eu1"), default="us1"), None, "us1"),
    ("boolean-missing", field(T.BOOLEAN), None, False),
    ("boolean-empty", field(T.BOOLEAN), "", False),
    ("boolean-unchecked-ignores-default", field(T.BOOLEAN, default=True), None, False),
    ("secret-required", field(T.SECRET), None, FieldError),
    ("url-required", field(T.URL), "", FieldError),
    ("integer-required", field(T.INTEGER), "", FieldError),
]


@pytest.mark.parametrize(
    ("the_field", "raw", "expected"),
    [row[1:] for row in EMPTY],
    ids=[row[0] for row in EMPTY],
)
def test_an_empty_value_becomes_the_default_none_or_is_required(
    the_field: Field, raw: str | None, expected: Any
) -> None:
    if expected is FieldError:
        assert rejects(the_field, raw) == "is required"
    else:
        assert check_value(the_field, raw) == expected


def test_a_given_value_overrides_the_default() -> None:
    assert check_value(field(default="eu1"), "us1") == "us1"


def test_a_default_that_breaks_the_rules_is_refused_rather_than_used() -> None:
    message = rejects(field(T.HOSTNAME, default="127.0.0.1"), None)
    assert message.startswith("the default is invalid")


# --- check_default ---------------------------------------------------------------

DEFAULTS_OK = [
    ("none", field()),
    ("text", field(default="hello")),
    ("text-pattern", field(pattern=r"[a-z]+", default="abc")),
    ("url", field(T.URL, default="https://example.com/")),
    ("hostname", field(T.HOSTNAME, default="api.example.com")),
    ("email", field(T.EMAIL, default="a@example.com")),
    ("integer", field(T.INTEGER, default=30)),
    ("integer-negative", field(T.INTEGER, default=-1)),
    ("choice", field(T.CHOICE, choices=("a", "b"), default="b")),
    ("optional", field(required=False, default="x")),
]


@pytest.mark.parametrize("the_field", [r[1] for r in DEFAULTS_OK], ids=[r[0] for r in DEFAULTS_OK])
def test_a_valid_default_passes_check_default(the_field: Field) -> None:
    assert check_default(the_field) is None


DEFAULTS_WRONG = [
    ("secret", field(T.SECRET, default="hunter2"), "secret field cannot have a default"),
    ("boolean-true", field(T.BOOLEAN, default=True), "false unless checked"),
    ("boolean-as-string", field(T.BOOLEAN, default="true"), "false unless checked"),
    ("integer-as-string", field(T.INTEGER, default="30"), "whole number"),
    ("integer-as-bool", field(T.INTEGER, default=True), "whole number"),
    ("integer-too-big", field(T.INTEGER, default=10**18), "whole number"),
    ("text-as-int", field(default=3), "must be a string"),
    ("text-as-bool", field(default=False), "must be a string"),
    ("text-empty", field(default=""), "must not be empty"),
    ("text-whitespace", field(default=" x "), "surrounding whitespace"),
    ("text-pattern", field(pattern=r"[a-z]+", default="ABC"), "expected format"),
    ("text-too-long", field(max_length=2, default="abc"), "at most 2"),
    ("text-too-short", field(min_length=5, default="abc"), "at least 5"),
    ("text-control", field(default="a\x00b"), "control characters"),
    ("url-http", field(T.URL, default="http://example.com/"), "https"),
    ("hostname-ip", field(T.HOSTNAME, default="10.0.0.1"), "IP address"),
    ("email", field(T.EMAIL, default="nobody"), "e-mail address"),
    ("choice-not-listed", field(T.CHOICE, choices=("a", "b"), default="c"), "one of: a, b"),
]


@pytest.mark.parametrize(
    ("the_field", "message_part"),
    [r[1:] for r in DEFAULTS_WRONG],
    ids=[r[0] for r in DEFAULTS_WRONG],
)
def test_a_wrong_default_is_described_by_check_default(the_field: Field, message_part: str) -> None:
    message = check_default(the_field)
    assert message is not None
    assert message_part in message


def test_check_default_never_quotes_a_secret_default() -> None:
    message = check_default(field(T.SECRET, default="hunter2"))
    assert message is not None
    assert "hunter2" not in message


# --- check_values ----------------------------------------------------------------

FORM = (
    Field(id="shop", label="Shop", type=T.TEXT, pattern=r"[a-z0-9-]+"),
    Field(id="dc", label="Data centre", type=T.CHOICE, choices=("us1", "eu1"), default="us1"),
    Field(id="signing_key", label="Signing key", type=T.SECRET),
    Field(id="api_token", label="API token", type=T.SECRET, required=False),
    Field(id="page_size", label="Page size", type=T.INTEGER, required=False),
    Field(id="sandbox", label="Sandbox", type=T.BOOLEAN),
    Field(id="base_url", label="Base URL", type=T.URL, required=False),
)


def test_check_values_splits_config_from_secrets() -> None:
    config, secrets = check_values(
        FORM,
        {"shop": " acme ", "signing_key": "k3y", "page_size": "50", "sandbox": "on"},
    )
    assert config == {"shop": "acme", "dc": "us1", "page_size": 50, "sandbox": True}
    assert secrets == {"signing_key": "k3y"}


def test_check_values_omits_empty_optional_fields_and_keeps_false_booleans() -> None:
    config, secrets = check_values(FORM, {"shop": "acme", "signing_key": "k", "base_url": ""})
    assert config == {"shop": "acme", "dc": "us1", "sandbox": False}
    assert secrets == {"signing_key": "k"}


def test_check_values_ignores_unknown_keys() -> None:
    config, secrets = check_values(
        FORM, {"shop": "acme", "signing_key": "k", "evil": "\x00", "csrf": "t"}
    )
    assert "evil" not in config
    assert "csrf" not in config
    assert secrets == {"signing_key": "k"}


def test_check_values_reports_every_wrong_field_at_once() -> None:
    with pytest.raises(FieldErrors) as caught:
        check_values(
            FORM,
            {
                "shop": "Not A Shop!",
                "dc": "ap9",
                "page_size": "many",
                "sandbox": "perhaps",
                "base_url": "http://example.com",
            },
        )
    errors = caught.value.errors
    assert errors == {
        "shop": "does not have the expected format",
        "dc": "must be one of: us1, eu1",
        "signing_key": "is required",
        "page_size": "must be a whole number of at most 18 digits",
        "sandbox": "must be true or false",
        "base_url": "must use https (plain http is allowed only for localhost)",
    }
    assert list(errors) == [f.id for f in FORM if f.id in errors]  # in form order
    assert "shop: does not have the expected format" in str(caught.value)


def test_a_wrong_secret_is_reported_without_its_value() -> None:
    secret = Field(id="signing_key", label="Key", type=T.SECRET, min_length=20)
    with pytest.raises(FieldErrors) as caught:
        check_values([secret], {"signing_key": "hunter2-is-my-pass"})
    assert caught.value.errors == {"signing_key": "must be at least 20 characters"}
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(caught.value)


def test_errors_are_value_errors_with_structured_fields() -> None:
    error = FieldError("shop", "is required")
    assert isinstance(error, ValueError)
    assert (error.field_id, error.message, str(error)) == (
        "shop",
        "is required",
        "shop: is required",
    )
    errors = FieldErrors({"a": "is required"})
    assert isinstance(errors, ValueError)
    assert errors.errors == {"a": "is required"}
    template_error = TemplateError(None, "has no host")
    assert isinstance(template_error, ValueError)
    assert template_error.field_id is None
    assert str(template_error) == "has no host"


# --- resolve_url -----------------------------------------------------------------

SHOP = "https://{shop}.myshopify.com/admin/oauth/authorize"
WORKSPACE = "https://api.example.com/{workspace}/items"
HOST = "https://{host}/oauth"

RESOLVED = [
    ("shop", SHOP, {"shop": "acme"}, "https://acme.myshopify.com/admin/oauth/authorize"),
    ("shop-lowercased", SHOP, {"shop": "EVIL"}, "https://evil.myshopify.com/admin/oauth/authorize"),
    (
        "shop-hyphen-digits",
        SHOP,
        {"shop": "a-1"},
        "https://a-1.myshopify.com/admin/oauth/authorize",
    ),
    (
        "shop-63",
        SHOP,
        {"shop": "a" * 63},
        f"https://{'a' * 63}.myshopify.com/admin/oauth/authorize",
    ),
    (
        "mailchimp-dc",
        "https://{dc}.api.mailchimp.com/3.0",
        {"dc": "us21"},
        "https://us21.api.mailchimp.com/3.0",
    ),
    (
        "label-with-literal",
        "https://api-{region}.example.com/",
        {"region": "eu"},
        "https://api-eu.example.com/",
    ),
    (
        "two-labels",
        "https://{a}.{b}.example.com/",
        {"a": "x", "b": "y"},
        "https://x.y.example.com/",
    ),
    ("workspace", WORKSPACE, {"workspace": "team-1"}, "https://api.example.com/team-1/items"),
    (
        "workspace-one-segment",
        WORKSPACE,
        {"workspace": "a/../b"},
        "https://api.example.com/a%2F..%2Fb/items",
    ),
    (
        "workspace-encoded",
        WORKSPACE,
        {"workspace": "a b?c#d%e"},
        "https://api.example.com/a%20b%3Fc%23d%25e/items",
    ),
    (
        "workspace-unicode",
        WORKSPACE,
        {"workspace": "café"},
        "https://api.example.com/caf%C3%A9/items",
    ),
    ("workspace-dots-inside", WORKSPACE, {"workspace": "..."}, "https://api.example.com/.../items"),
    ("workspace-integer", WORKSPACE, {"workspace": 42}, "https://api.example.com/42/items"),
    (
        "loopback-path",
        "http://127.0.0.1:8080/{workspace}/oauth/token",
        {"workspace": "w"},
        "http://127.0.0.1:8080/w/oauth/token",
    ),
    ("localhost-port", "http://localhost:9000/{x}", {"x": "y"}, "http://localhost:9000/y"),
    ("ipv6-loopback", "http://[::1]:9000/{x}", {"x": "y"}, "http://[::1]:9000/y"),
    ("whole-host", HOST, {"host": "jira.example.com"}, "https://jira.example.com/oauth"),
    ("whole-host-lowercased", HOST, {"host": "Jira.Example.com"}, "https://jira.example.com/oauth"),
    (
        "whole-host-with-port",
        "https://{host}:8443/oauth",
        {"host": "a.example.com"},
        "https://a.example.com:8443/oauth",
    ),
    (
        "query",
        "https://api.example.com/x?account={account}&v=2",
        {"account": "a&b=c"},
        "https://api.example.com/x?account=a%26b%3Dc&v=2",
    ),
    ("query-empty", "https://api.example.com/x?q={q}", {"q": ""}, "https://api.example.com/x?q="),
    (
        "query-boolean-true",
        "https://api.example.com/x?sandbox={s}",
        {"s": True},
        "https://api.example.com/x?sandbox=true",
    ),
    (
        "query-boolean-false",
        "https://api.example.com/x?sandbox={s}",
        {"s": False},
        "https://api.example.com/x?sandbox=false",
    ),
    (
        "query-integer",
        "https://api.example.com/x?n={n}",
        {"n": -5},
        "https://api.example.com/x?n=-5",
    ),
    (
        "query-slash-colon",
        "https://api.example.com/x?r={r}",
        {"r": "https://evil.com/"},
        "https://api.example.com/x?r=https%3A%2F%2Fevil.com%2F",
    ),
    ("fragment", "https://api.example.com/x#{f}", {"f": "a b"}, "https://api.example.com/x#a%20b"),
    (
        "query-without-path",
        "https://api.example.com?x={x}",
        {"x": "/@evil"},
        "https://api.example.com?x=%2F%40evil",
    ),
    (
        "unused-values-ignored",
        WORKSPACE,
        {"workspace": "w", "other": "x"},
        "https://api.example.com/w/items",
    ),
    ("no-placeholders", "https://api.example.com/a/b?c=d", {}, "https://api.example.com/a/b?c=d"),
    ("no-placeholders-case-kept", "https://API.Example.com/A", {}, "https://API.Example.com/A"),
    ("no-placeholders-loopback", "http://127.0.0.1:8080/token", {}, "http://127.0.0.1:8080/token"),
]


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [r[1:] for r in RESOLVED],
    ids=[r[0] for r in RESOLVED],
)
def test_resolve_url_fills_placeholders_safely(
    template: str, values: dict[str, str | int | bool], expected: str
) -> None:
    assert resolve_url(template, values) == expected


UNRESOLVABLE = [
    ("shop-fragment", SHOP, {"shop": "evil.com#"}, "shop"),
    ("shop-slash", SHOP, {"shop": "evil.com/"}, "shop"),
    ("shop-at", SHOP, {"shop": "x@evil"}, "shop"),
    ("shop-dot", SHOP, {"shop": "a.b"}, "shop"),
    ("shop-cyrillic", SHOP, {"shop": "sh\u043ep"}, "shop"),
    ("shop-kelvin-sign", SHOP, {"shop": "\u212aey"}, "shop"),
    ("shop-space", SHOP, {"shop": "a b"}, "shop"),
    ("shop-leading-hyphen", SHOP, {"shop": "-a"}, "shop"),
    ("shop-trailing-hyphen", SHOP, {"shop": "a-"}, "shop"),
    ("shop-empty", SHOP, {"shop": ""}, "shop"),
    ("shop-64", SHOP, {"shop": "a" * 64}, "shop"),
    ("shop-colon-port", SHOP, {"shop": "evil.com:443"}, "shop"),
    ("shop-backslash", SHOP, {"shop": "evil\\"}, "shop"),
    ("shop-percent", SHOP, {"shop": "evil%2ecom"}, "shop"),
    ("shop-underscore", SHOP, {"shop": "a_b"}, "shop"),
    ("shop-nul", SHOP, {"shop": "a\x00"}, "shop"),
    ("shop-newline", SHOP, {"shop": "a\n"}, "shop"),
    ("shop-missing", SHOP, {}, "shop"),
    ("shop-none", SHOP, {"shop": None}, "shop"),
    ("shop-float", SHOP, {"shop": 1.5}, "shop"),
    ("label-too-long-combined", "https://api-{r}.example.com/", {"r": "a" * 60}, "r"),
    ("ip-address-host", "https://{a}.{b}.{c}.1/", {"a": "127", "b": "0", "c": "0"}, "a"),
    ("placeholder-in-last-label", "https://api.example.com{x}/", {"x": "evil"}, "x"),
    ("placeholder-as-last-label", "https://api.example.{tld}/", {"tld": "com"}, "tld"),
    ("workspace-dotdot", WORKSPACE, {"workspace": ".."}, "workspace"),
    ("workspace-dot", WORKSPACE, {"workspace": "."}, "workspace"),
    ("workspace-empty", WORKSPACE, {"workspace": ""}, "workspace"),
    ("workspace-lone-surrogate", WORKSPACE, {"workspace": "\ud800"}, "workspace"),
    ("workspace-missing", WORKSPACE, {}, "workspace"),
    ("host-ip", HOST, {"host": "127.0.0.1"}, "host"),
    ("host-decimal-ip", HOST, {"host": "2130706433"}, "host"),
    ("host-port", HOST, {"host": "evil.com:444"}, "host"),
    ("host-userinfo", HOST, {"host": "evil.com@x"}, "host"),
    ("host-path", HOST, {"host": "evil.com/x"}, "host"),
    ("host-fragment", HOST, {"host": "evil.com#"}, "host"),
    ("host-ipv6", HOST, {"host": "[::1]"}, "host"),
    ("host-empty", HOST, {"host": ""}, "host"),
    ("host-trailing-dot", HOST, {"host": "evil.com."}, "host"),
    ("host-cyrillic", HOST, {"host": "\u0430pple.com"}, "host"),
    ("port-placeholder", "https://api.example.com:{port}/x", {"port": "443"}, "port"),
    ("userinfo-placeholder", "https://{user}@api.example.com/x", {"user": "u"}, "user"),
    ("password-placeholder", "https://u:{pw}@api.example.com/x", {"pw": "p"}, "pw"),
]


@pytest.mark.parametrize(
    ("template", "values", "field_id"),
    [r[1:] for r in UNRESOLVABLE],
    ids=[r[0] for r in UNRESOLVABLE],
)
def test_resolve_url_rejects_a_value_that_could_move_the_url(
    template: str, values: dict[str, Any], field_id: str
) -> None:
    with pytest.raises(TemplateError) as caught:
        resolve_url(template, values)
    assert caught.value.field_id == field_id
    for value in values.values():
        if isinstance(value, str) and len(value) > 2:
            assert value not in caught.value.message


def test_a_missing_value_says_it_has_no_value() -> None:
    with pytest.raises(TemplateError) as caught:
        resolve_url(SHOP, {})
    assert (caught.value.field_id, caught.value.message) == ("shop", "has no value")


BAD_TEMPLATES = [
    ("no-scheme", "api.example.com/{x}", {"x": "a"}),
    ("ftp", "ftp://api.example.com/{x}", {"x": "a"}),
    ("upper-case-scheme", "HTTPS://api.example.com/{x}", {"x": "a"}),
    ("placeholder-in-scheme", "{scheme}://api.example.com/", {"scheme": "https"}),
    ("http-remote", "http://api.example.com/{x}", {"x": "a"}),
    ("http-remote-no-placeholders", "http://api.example.com/x", {}),
    ("http-host-placeholder", "http://{x}.example.com/", {"x": "a"}),
    ("http-whole-host-localhost", "http://{host}/", {"host": "localhost"}),
    ("literal-userinfo", "https://user@api.example.com/{x}", {"x": "a"}),
    ("bad-port", "https://api.example.com:http/{x}", {"x": "a"}),
    ("port-out-of-range", "https://api.example.com:65536/{x}", {"x": "a"}),
    ("port-zero", "https://api.example.com:0/{x}", {"x": "a"}),
    ("no-host", "https:///{x}", {"x": "a"}),
    ("invalid-placeholder", "https://api.example.com/{X}", {"X": "a"}),
    ("unmatched-brace", "https://api.example.com/{x", {"x": "a"}),
]


@pytest.mark.parametrize(
    ("template", "values"),
    [r[1:] for r in BAD_TEMPLATES],
    ids=[r[0] for r in BAD_TEMPLATES],
)
def test_resolve_url_rejects_a_template_that_cannot_be_filled_safely(
    template: str, values: dict[str, Any]
) -> None:
    with pytest.raises(TemplateError):
        resolve_url(template, values)


@pytest.mark.parametrize(
    "host", ["localhost", "intranet", "jira.corp", "db.internal", "printer.local", "a.localhost"]
)
def test_a_whole_host_value_is_never_a_local_name(host: str) -> None:
    # Such names resolve only inside the server's own network.
    with pytest.raises(TemplateError, match="public host name"):
        resolve_url("https://{host}/x", {"host": host})
    with pytest.raises(FieldError, match="public host name"):
        check_value(field(T.HOSTNAME), host)


# --- property-style: a host label value can never move the host -----------------

SUFFIX = ".myshopify.com"
_ALPHABET = (
    string.ascii_letters
    + string.digits
    + "-._~:/?#[]@!$&'()*+,;=% \\\t\n\x00"
    + "\u043e\u212a\u0131\u00e9\u200b\uff0e\u3002"
)


def _candidates() -> list[str]:
    rng = random.Random(20240517)
    values = [a + b for a in map(chr, range(128)) for b in map(chr, range(128))]
    values += ["".join(rng.choices(_ALPHABET, k=rng.randint(0, 70))) for _ in range(20_000)]
    values += ["evil.com#", "evil.com/", "x@evil", "a.b", "evil.com:443", "evil.com\\", "a" * 63]
    return values


def test_any_accepted_host_label_keeps_the_templates_fixed_suffix() -> None:
    accepted = 0
    blamed = set()
    for value in _candidates():
        try:
            resolved = resolve_url(SHOP, {"shop": value})
        except TemplateError as exc:
            blamed.add(exc.field_id)
            continue
        accepted += 1
        parts = urlsplit(resolved)
        assert parts.hostname is not None
        assert parts.hostname.endswith(SUFFIX), value
        assert parts.hostname == value.lower() + SUFFIX, value
        assert "." not in parts.hostname.removesuffix(SUFFIX), value
        assert (parts.scheme, parts.port, parts.username) == ("https", None, None)
        assert parts.path == "/admin/oauth/authorize"
        assert parts.query == parts.fragment == ""
    assert accepted > 1000  # the check saw plenty of accepted values, not only rejections
    assert blamed == {"shop"}


def test_any_path_value_stays_one_segment() -> None:
    rng = random.Random(7)
    for _ in range(5_000):
        value = "".join(rng.choices(_ALPHABET, k=rng.randint(1, 20)))
        if value in {".", ".."}:
            continue
        resolved = resolve_url(WORKSPACE, {"workspace": value})
        parts = urlsplit(resolved)
        assert parts.hostname == "api.example.com"
        assert parts.path.count("/") == 2, value
        assert parts.path.endswith("/items")
        assert parts.query == parts.fragment == ""
