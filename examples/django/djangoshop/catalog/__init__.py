"""Catalog: categories (a tree), products with unique SKUs and slugs, tags chosen by slug."""
