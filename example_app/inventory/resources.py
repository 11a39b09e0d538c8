"""The four inventory resources (site, computer, freezer, container) as data.

Each :class:`Resource` names its table, its writable fields with their rules, its
read-only columns, how database constraint names map back to fields, and the rule
that may forbid deleting it. :mod:`inventory.crud` turns a resource into endpoints and
:mod:`inventory.openapi` into schemas, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from inventory.db import Cursor, fetch_dict
from inventory.validation import Field

#: Returns why an object may not be deleted, or None when it may.
DeleteGuard = Callable[[Cursor, int], str | None]


@dataclass(frozen=True)
class Resource:
    """An object type served under ``/api/<plural>``.

    Attributes:
        name: Singular, lowercase (``site``); also the table name.
        plural: Path segment (``sites``).
        title: Schema name in the OpenAPI document (``Site``).
        fields: Writable fields, in output order.
        read_only: Columns the server sets (always starts with ``id``).
        unique: Unique constraint or index name -> field it protects.
        references: Foreign key constraint name -> field that holds the reference.
        checks: Check constraint name -> field it checks (a safety net behind validation).
        delete_guard: Business rule run before a delete.
    """

    name: str
    plural: str
    title: str
    fields: tuple[Field, ...]
    read_only: tuple[str, ...] = ("id",)
    unique: dict[str, str] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)
    delete_guard: DeleteGuard | None = None

    @property
    def table(self) -> str:
        """The table holding the resource."""
        return self.name

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the API returns, read-only ones first."""
        return self.read_only + tuple(f.name for f in self.fields)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _guard_site(cur: Cursor, site_id: int) -> str | None:
    cur.execute("SELECT computers, freezers FROM site_inventory WHERE site_id = %s", (site_id,))
    counts = fetch_dict(cur)
    if counts is None or counts["computers"] + counts["freezers"] == 0:
        return None
    held = [_plural(counts[kind], kind[:-1]) for kind in ("computers", "freezers") if counts[kind]]
    return (
        f"site {site_id} still has {' and '.join(held)}; "
        "move or delete its instruments before deleting the site"
    )


def _guard_freezer(cur: Cursor, freezer_id: int) -> str | None:
    cur.execute("SELECT count(*) FROM container WHERE freezer_id = %s", (freezer_id,))
    row = cur.fetchone()
    held = int(row[0]) if row else 0
    if held == 0:
        return None
    return (
        f"freezer {freezer_id} still holds {_plural(held, 'container')}; "
        "move or delete its containers before deleting the freezer"
    )


def _name(description: str, example: str) -> Field:
    return Field(
        "name", "string", required=True, max_length=200, description=description, example=example
    )


def _text(name: str, max_length: int, description: str, example: str) -> Field:
    return Field(
        name,
        "string",
        nullable=True,
        max_length=max_length,
        description=description,
        example=example,
    )


SITE = Resource(
    name="site",
    plural="sites",
    title="Site",
    fields=(
        _name("Name of the site, unique ignoring case.", "North Lab"),
        _text("contact", 200, "Person or team to contact.", "Ada Lovelace"),
        _text("address", 500, "Street address.", "1 Science Park"),
        _text("state_or_region", 100, "State, province or region.", "Cambridgeshire"),
        _text("country", 100, "Country.", "United Kingdom"),
        _text("postcode_or_zip", 20, "Postcode or ZIP code.", "CB4 0WS"),
    ),
    read_only=("id", "code"),
    unique={"site_name_lower_key": "name", "site_code_key": "code"},
    checks={
        "site_name_not_blank": "name",
        "site_name_length": "name",
        "site_contact_length": "contact",
        "site_address_length": "address",
        "site_state_or_region_length": "state_or_region",
        "site_country_length": "country",
        "site_postcode_or_zip_length": "postcode_or_zip",
    },
    delete_guard=_guard_site,
)

COMPUTER = Resource(
    name="computer",
    plural="computers",
    title="Computer",
    fields=(
        _name("Host name of the instrument computer.", "seq-ctrl-01"),
        Field(
            "mac",
            "mac",
            required=True,
            description="MAC address, unique; returned as lowercase xx:xx:xx:xx:xx:xx.",
            example="08:00:2b:01:02:03",
        ),
        Field(
            "site_id",
            "reference",
            required=True,
            references="site",
            description="Site the computer stands at.",
            example=1,
        ),
    ),
    unique={"computer_mac_key": "mac"},
    references={"computer_site_id_fkey": "site_id"},
    checks={"computer_name_not_blank": "name", "computer_name_length": "name"},
)

FREEZER = Resource(
    name="freezer",
    plural="freezers",
    title="Freezer",
    fields=(
        _name("Name of the freezer.", "Minus eighty #2"),
        Field(
            "site_id",
            "reference",
            required=True,
            references="site",
            description="Site the freezer stands at.",
            example=1,
        ),
        Field(
            "temperature_c",
            "integer",
            nullable=True,
            minimum=-200,
            maximum=20,
            description="Set point in degrees Celsius.",
            example=-80,
        ),
    ),
    references={"freezer_site_id_fkey": "site_id"},
    checks={
        "freezer_name_not_blank": "name",
        "freezer_name_length": "name",
        "freezer_temperature_c_range": "temperature_c",
    },
    delete_guard=_guard_freezer,
)

CONTAINER = Resource(
    name="container",
    plural="containers",
    title="Container",
    fields=(
        Field(
            "uuid",
            "uuid",
            required=True,
            description="UUID printed on the container's label, unique; returned lowercase.",
            example="123e4567-e89b-12d3-a456-426614174000",
        ),
        _text("description", 1000, "What the container holds.", "PBMC aliquots, batch 7"),
        Field(
            "freezer_id",
            "reference",
            required=True,
            references="freezer",
            description="Freezer the container is stored in.",
            example=1,
        ),
    ),
    read_only=("id", "created_at"),
    unique={"container_uuid_key": "uuid"},
    references={"container_freezer_id_fkey": "freezer_id"},
    checks={"container_description_length": "description"},
)

RESOURCES: tuple[Resource, ...] = (SITE, COMPUTER, FREEZER, CONTAINER)
