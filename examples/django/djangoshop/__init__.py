"""djangoshop: a Django REST framework shop API, the bundled Django example of nocrud.

Five apps with a migration history grown the way real projects grow one (renames, new
fields with backfills, constraints added later): ``accounts`` (profiles, seeded roles and
users), ``catalog`` (categories, products, tags), ``inventory`` (warehouses, stock,
movements), ``orders`` (orders and their lines, with business rules) and ``audit`` (who
changed what). Settings come from environment variables (``djangoshop.settings``).
"""
