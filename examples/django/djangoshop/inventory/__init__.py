"""Inventory: warehouses (addressed by their code), stock per product and warehouse, movements."""
