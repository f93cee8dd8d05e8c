"""Django's PostgreSQL backend, with batches that fit server-side binding (``base.py``)."""
