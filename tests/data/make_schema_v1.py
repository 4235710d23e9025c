"""How tests/data/schema_v1.sql was made: the schema as migration 1 shipped it, with a few rows.

Kept frozen on purpose: the migration test opens a database built from it with today's recap.
"""
