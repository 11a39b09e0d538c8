"""Orders: a customer's order and its lines, placed against stock, cancelled, shipped."""
