"""The one masking policy: what nocrud never prints, wherever it prints it.

nocrud shows people text that may hold secrets in three places: the configuration
(``nocrud config`` and the values quoted in config errors), the HTTP client's request
log (the request and response in an :class:`~nocrud.http.responses.UnexpectedStatus`
message, the one line logged per call) and the reports of a run (terminal blocks,
JUnit XML, the JSON results file), which carry each flow's message, traceback, output
and the app's logs. All of them ask this module, so one name, URL or line comes out
the same way in each. The rules, and why each is what it is:

- **Names** (:func:`is_secret_name`): env var names, JSON, form and query fields,
  config keys and header names follow one rule. A name is split into lower-case words
  at separators and case changes (``DB_PASSWD``, ``apiKey``, ``X-Api-Key``). It is
  secret when a word contains ``password``, ``passwd``, ``passphrase``, ``pwd``,
  ``secret``, ``token`` or ``credential`` (so run-together names such as
  ``PGPASSWORD`` and ``accesstoken`` are caught; the price is masking ``max_tokens``,
  and ``PWD``, the shell's working directory, because a ``pwd`` form field is a
  password), or when a whole word is ``pass``, ``auth``, ``authorization``, ``jwt``,
  ``bearer``, ``csrf``, ``xsrf``, ``sessionid``, ``signature`` or ``sig`` (whole words
  only: ``author``, ``bypass`` and ``passenger`` are not secrets; ``sig`` and
  ``signature`` are what make a signed URL usable). ``key`` is secret only when the
  word before it says what kind of credential it is (``API_KEY``, ``PRIVATE_KEY``,
  ``secretKey``, ``access_key``, ``signing_key``, run together as in ``apikey``):
  ``sort_key``, ``primary_key``, ``public_key``, ``Idempotency-Key``, a bare ``key``
  and ``keyboard`` name things, not credentials. A name that ends in the word ``key``
  after any other word (``DJANGO_KEY``, ``STRIPE_KEY``, ``appKey``) is secret too,
  unless that word is one of :data:`_NAMING_KEY_WORDS` (``sort``, ``primary``,
  ``public``, ``idempotency``...): an env var of that shape is usually a credential,
  and showing one by mistake costs more than masking a name. A key followed by ``id``
  (``ACCESS_KEY_ID``, ``key_id``) names a key rather than being one, so it is shown.
  An auth helper may declare more names (``ApiKey(param="key")``): ``names=``.
- **Values with nothing to hide** are shown even under a secret name: empty, null,
  true/false (a flag about a secret is not one), the mask itself, and a placeholder
  such as ``{db_password}`` or ``${DB_PASSWORD}`` (nocrud fills it in later; seeing
  it tells the reader how the value is wired). A secret name hides any other value,
  whatever its type (a PIN may be a number); in parsed data a nested object or list
  under a secret name is hidden whole.
- **URLs** (:func:`mask_url`): ``scheme://user:password@host`` keeps the user (which
  account is used is what one debugs) and masks the password; a userinfo without a
  colon (``https://TOKEN@host``) is masked whole, because a token sent as the user is
  common (GitHub, Sentry DSNs) and cannot be told from a user name; write
  ``user:@host`` to show a user with no password. Query and fragment parameters
  follow the name rule.
- **Free text** (:func:`mask_text`) is everything else: messages, tracebacks, bodies
  that are not JSON, app logs. Known literal secrets (an auth helper's password or
  token, also percent- or JSON-encoded) are replaced when at least :data:`MIN_LITERAL`
  characters long, since replacing every ``a`` of a page because a test password is
  ``a`` would make it unreadable. Then every URL, every ``name=value`` pair (query
  strings, forms, DSNs, keyword arguments), every quoted ``"name": value`` pair (JSON
  or a Python dict quoted in a message; string and number values, since a bare word
  there is code) and every secret header line (``Authorization: ...``, or a dashed
  name such as ``X-Auth-Token: ...``; undashed ``Name: value`` lines are left alone
  because exception lines such as ``InvalidTokenError: ...`` look the same) is masked
  by the rules above. A ``name=value`` value runs to whitespace, ``&``, ``#``, a
  quote or ``<>``; punctuation at its end (``)``, ``,``, ``.``) is kept outside so
  code and prose stay readable. A percent-encoded value (``?next=https%3A%2F%2F...``)
  is decoded, masked by the same rules and encoded again. Free text is searched with
  patterns, so JSON whose quotes are escaped inside another string is not found
  there; parsed data (:func:`mask_mapping`) has no such limit.
- **Headers** (:func:`mask_header`): :data:`SECRET_HEADERS` and any header whose name
  is secret show ``********``; a ``Cookie`` header keeps the cookie names
  (``sessionid=********``), which is what one needs to debug a login. ``Set-Cookie``
  is masked whole: several are folded into one comma-joined value that cannot be
  split reliably (``Expires`` holds a comma).

Masking is idempotent, so text masked once (a request log inside a flow's message)
passes unchanged through a report that masks it again. Masking a harmless value is
cheap; printing a password is not: when in doubt, a rule masks.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Final
from urllib.parse import quote, quote_plus, unquote_plus

__all__ = [
    "MASK",
    "MIN_LITERAL",
    "SECRET_HEADERS",
    "is_secret_header",
    "is_secret_name",
    "mask_header",
    "mask_mapping",
    "mask_text",
    "mask_url",
]

#: What every secret is replaced with.
MASK: Final = "********"

#: Literal secrets shorter than this are not scrubbed from free text.
MIN_LITERAL: Final = 4

#: Headers whose values are always masked (lower case), whatever their name says.
SECRET_HEADERS: Final = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-csrftoken"}
)

# Found anywhere inside a word: "PGPASSWORD", "newpassword", "accesstoken", "clientsecret".
_SECRET_PARTS = ("password", "passwd", "passphrase", "pwd", "secret", "token", "credential")
# Secret only as a whole word: "auth" but not "author", "pass" but not "bypass".
_SECRET_WORDS = frozenset(
    {
        "pass",
        "auth",
        "authorization",
        "jwt",
        "bearer",
        "csrf",
        "xsrf",
        "sessionid",
        "signature",
        "sig",
    }
)
# The word before "key" that makes it a credential rather than the name of a thing.
_KEY_QUALIFIERS = frozenset(
    {
        "access",
        "account",
        "api",
        "app",
        "auth",
        "client",
        "deploy",
        "encryption",
        "hmac",
        "license",
        "master",
        "pass",
        "private",
        "secret",
        "service",
        "session",
        "signing",
        "ssh",
        "storage",
        "subscription",
        "webhook",
    }
)

# The word before a final "key" that makes it the name of a thing, not a credential.
_NAMING_KEY_WORDS = frozenset(
    {
        "cache",
        "candidate",
        "composite",
        "dedup",
        "foreign",
        "group",
        "hash",
        "idempotency",
        "index",
        "lookup",
        "map",
        "natural",
        "object",
        "order",
        "partition",
        "primary",
        "public",
        "range",
        "routing",
        "row",
        "shard",
        "sort",
        "surrogate",
        "unique",
    }
)

_CASE_CHANGE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[a-z]+")
_PLACEHOLDER = re.compile(r"\$?\{[A-Za-z_]\w*\}")

# scheme://userinfo@ -- the userinfo runs to the last '@' before the host, so a password
# holding an unescaped '@' is masked whole. No word boundary before the scheme: an ANSI
# colour code may end right before it ("\x1b[32mhttps://...").
_USERINFO = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^\s/?#\"'<>]*)@")
# name=value: query strings, forms, DSNs, keyword arguments. A value is a placeholder, a
# quoted string, or runs to whitespace, '&', '#', a quote or '<>' with trailing
# punctuation left outside it.
_PAIR = re.compile(
    r"(?<![\w.%\[\]])(?P<name>[A-Za-z_][\w.%\[\]-]*)="
    r"(?P<value>\"[^\"\n]*\"?|'[^'\n]*'?"
    r"|(?:\$?\{[A-Za-z_]\w*\}|[^\s&#\"'<>]*?)(?=[.,;:!?)\]}]*(?:[\s&#\"'<>]|$)))"
)
# "name": value in JSON or a Python repr; a bare value counts only when it is a number.
_QUOTED_PAIR = re.compile(
    r"(?P<key>(?P<q>[\"'])(?P<name>[^\"'\n]{1,100})(?P=q)\s*:\s*)"
    r"(?P<value>\"(?:[^\"\\\n]|\\.)*\"?|'(?:[^'\\\n]|\\.)*'?|-?\d[\d.eE+-]*)"
)
# A header line: "Authorization: Bearer ...", indented or not.
_HEADER_LINE = re.compile(
    r"^(?P<head>[ \t]*(?P<name>[A-Za-z][\w-]*)[ \t]*:[ \t]*)(?P<value>[^\r\n]*)", re.MULTILINE
)


@functools.lru_cache(maxsize=4096)
def _words(name: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(_CASE_CHANGE.sub(" ", name).lower()))


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether a value called ``name`` is a secret: env var, field, parameter or key.

    ``DB_PASSWD``, ``PRIVATE_KEY``, ``apiKey``, ``access_token``, ``client_secret`` and
    ``X-Api-Key`` are; ``sort_key``, ``primary_key``, ``key_id``, ``keyboard``,
    ``monkey`` and ``author`` are not. The rule is in this module's docstring.
    """
    words = _words(name)
    for i, word in enumerate(words):
        if word in _SECRET_WORDS or any(part in word for part in _SECRET_PARTS):
            return True
        if _is_credential_key(words, i):
            return True
    return False


def _is_credential_key(words: tuple[str, ...], i: int) -> bool:
    if words[i + 1 : i + 2] == ("id",):
        return False
    word = words[i]
    if word in ("key", "keys"):
        if i == 0:
            return False
        if i == len(words) - 1 and words[i - 1] not in _NAMING_KEY_WORDS:
            return True  # DJANGO_KEY, STRIPE_KEY: see the module docstring
        return words[i - 1] in _KEY_QUALIFIERS
    stem = word.removesuffix("s").removesuffix("key")  # run together: "apikey", "privatekeys"
    return len(stem) < len(word) - 1 and any(stem.endswith(q) for q in _KEY_QUALIFIERS)


def is_secret_header(name: str) -> bool:
    """Whether HTTP header ``name``'s value is masked: :data:`SECRET_HEADERS` or a secret name."""
    return name.lower() in SECRET_HEADERS or is_secret_name(name)


def _nothing_to_hide(value: object) -> bool:
    if value is None or isinstance(value, bool):
        return True
    return isinstance(value, str) and (
        value in ("", MASK) or _PLACEHOLDER.fullmatch(value) is not None
    )


@functools.lru_cache(maxsize=256)
def _declared(names: frozenset[str]) -> frozenset[str]:
    return frozenset(name.lower() for name in names)


def _secret(name: str, names: frozenset[str]) -> bool:
    return is_secret_name(name) or (bool(names) and name.lower() in _declared(names))


def mask_url(url: str, *, names: Collection[str] = ()) -> str:
    """``url`` with its password, a lone userinfo and secret parameters masked.

    Args:
        url: A URL, or text holding URLs.
        names: More parameter names to treat as secret, on top of :func:`is_secret_name`.

    Returns:
        ``postgres://admin:********@db/app``, ``https://********@github.com/x.git``,
        ``https://h/x?page=2&access_token=********``; placeholders such as
        ``{db_password}`` are kept.
    """
    return _mask_pairs(_USERINFO.sub(_mask_userinfo, url), frozenset(names))


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, password = match["userinfo"].partition(":")
    if colon:
        shown = password if _nothing_to_hide(password) else MASK
        return f"{match['head']}{user}:{shown}@"
    shown = user if _nothing_to_hide(user) else MASK
    return f"{match['head']}{shown}@"


def _mask_pairs(text: str, names: frozenset[str]) -> str:
    def pair(match: re.Match[str]) -> str:
        name, value = match["name"], match["value"]
        opening = value[:1] if value[:1] in ('"', "'") else ""
        inner = value[len(opening) :]
        closing = opening if opening and inner.endswith(opening) else ""
        inner = inner.removesuffix(closing) if closing else inner
        if _secret(name, names):
            return match[0] if _nothing_to_hide(inner) else f"{name}={opening}{MASK}{closing}"
        if "%" in inner:
            # A percent-encoded URL or query in a parameter (?next=https%3A%2F%2Fu%3Apw%40h).
            decoded = unquote_plus(inner)
            masked = _mask_patterns(decoded, names)
            if masked != decoded:
                return f"{name}={opening}{quote_plus(masked, safe='*')}{closing}"
        return match[0]

    return _PAIR.sub(pair, text)


def _mask_quoted_pairs(text: str, names: frozenset[str]) -> str:
    def pair(match: re.Match[str]) -> str:
        value = match["value"]
        quote_char = value[0] if value[0] in "\"'" else ""
        inner = value[len(quote_char) :].removesuffix(quote_char) if quote_char else value
        if not _secret(match["name"], names):
            if not quote_char:
                return match[0]
            # A string value may quote pairs of its own: {"note": "{'password': 'x'}"}.
            closing = value[len(quote_char) + len(inner) :]
            return f"{match['key']}{quote_char}{_mask_quoted_pairs(inner, names)}{closing}"
        if _nothing_to_hide(inner):
            return match[0]
        quote_char = quote_char or match["q"]  # a number becomes a masked string
        return f"{match['key']}{quote_char}{MASK}{quote_char}"

    return _QUOTED_PAIR.sub(pair, text)


def _mask_header_lines(text: str, names: frozenset[str]) -> str:
    def line(match: re.Match[str]) -> str:
        name = match["name"]
        header_like = name.lower() in SECRET_HEADERS or name.lower() in _declared(names)
        if not (header_like or ("-" in name and is_secret_name(name))):
            return match[0]
        return f"{match['head']}{_mask_header_value(name, match['value'])}"

    return _HEADER_LINE.sub(line, text)


def _mask_header_value(name: str, value: str) -> str:
    if _nothing_to_hide(value.strip()):
        return value
    if name.lower() == "cookie":
        cookie_names = (part.split("=", 1)[0].strip() for part in value.split(";"))
        return "; ".join(f"{n}={MASK}" for n in cookie_names if n)
    return MASK


def mask_header(
    name: str, value: str, *, literals: Iterable[str] = (), names: Collection[str] = ()
) -> str:
    """One header's value as it may be shown.

    Args:
        name: The header name.
        value: Its value.
        literals: Known secret values, scrubbed from the values of other headers.
        names: More header (and parameter) names to treat as secret.

    Returns:
        ``********`` for a secret header, ``a=********; b=********`` for ``Cookie``,
        else the value as free text (:func:`mask_text`).
    """
    declared = frozenset(names)
    if is_secret_header(name) or name.lower() in _declared(declared):
        return _mask_header_value(name, value)
    return mask_text(value, literals=literals, names=declared)


@functools.lru_cache(maxsize=256)
def _literal_forms(literals: tuple[str, ...]) -> tuple[str, ...]:
    forms: set[str] = set()
    for secret in literals:
        if len(secret) >= MIN_LITERAL:
            forms.update((secret, quote(secret, safe=""), quote_plus(secret)))
            forms.add(json.dumps(secret)[1:-1])
    # Longest first, so a secret that contains another is replaced whole.
    return tuple(sorted(forms, key=len, reverse=True))


def mask_text(text: str, *, literals: Iterable[str] = (), names: Collection[str] = ()) -> str:
    """Free text with every secret this policy can find replaced by :data:`MASK`.

    Args:
        text: A message, traceback, log, body or URL.
        literals: Known secret values (a token, a password) to replace wherever they
            appear, also percent- and JSON-encoded; those shorter than
            :data:`MIN_LITERAL` characters are left.
        names: More names to treat as secret, on top of :func:`is_secret_name`.

    Returns:
        The text with literal secrets, secret header lines, URL passwords and
        userinfo, and the values of secret ``name=value`` and ``"name": value`` pairs
        masked.
    """
    for form in _literal_forms(tuple(literals)):
        text = text.replace(form, MASK)
    return _mask_patterns(text, frozenset(names))


def _mask_patterns(text: str, names: frozenset[str]) -> str:
    """Every rule of :func:`mask_text` but the literals, in an order where none undoes another."""
    text = _mask_header_lines(text, names)
    text = _USERINFO.sub(_mask_userinfo, text)
    text = _mask_quoted_pairs(text, names)
    return _mask_pairs(text, names)


def mask_mapping(value: Any, *, literals: Iterable[str] = (), names: Collection[str] = ()) -> Any:
    """A copy of nested data (parsed JSON, a config dump) with its secrets masked.

    A mapping's value under a secret key becomes :data:`MASK` whole, unless there is
    nothing to hide in it; every other string is masked as free text
    (:func:`mask_text`). Lists and tuples come back as lists; other values as they are.

    Args:
        value: A mapping, list or scalar.
        literals: Known secret values, as for :func:`mask_text`.
        names: More keys to treat as secret, on top of :func:`is_secret_name`.
    """
    literals = tuple(literals)
    declared = frozenset(names)
    if isinstance(value, Mapping):
        return {
            key: MASK
            if isinstance(key, str) and _secret(key, declared) and not _nothing_to_hide(item)
            else mask_mapping(item, literals=literals, names=declared)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_mapping(item, literals=literals, names=declared) for item in value]
    if isinstance(value, str):
        return mask_text(value, literals=literals, names=declared)
    return value
