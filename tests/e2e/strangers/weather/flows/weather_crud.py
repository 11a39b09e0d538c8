"""docs/flows.md's CRUD flows for an app of this shape, as written there."""

from nocrud import crud, unique, unique_uuid

# POST /sensors/ answers the new sensor as JSON; each lives at /sensors/<id>/.
sensor_crud = crud(
    "sensor_crud",
    "/sensors/",
    create={"name": "roof thermometer", "unit": "C"},
    update={"name": "garden thermometer"},
    items_key="results",  # pages of {"count", "next", "previous", "results"}
)

# PUT /readings/<id>/ creates a reading and answers 201 with an empty body.
reading_crud = crud(
    "reading_crud",
    "/readings/",
    id=lambda ctx: unique_uuid(),
    upsert="PUT",
    create={"sensor": "roof", "celsius": 21.5},
    update={"celsius": 22.0},
    items_key="results",
)

# POST /stations/ takes the station's code in the payload and answers 201 "created".
station_crud = crud(
    "station_crud",
    "/stations/",
    id_field="code",
    create=lambda ctx: {"code": unique("st"), "name": "Roof"},
    partial_update={"name": "Garden"},
    items_key="results",
)
