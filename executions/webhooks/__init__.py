"""Events out: the platform events of the event log, delivered to organizations' webhook
endpoints, signed, with retries and a delivery log (DESIGN.md §9)."""
