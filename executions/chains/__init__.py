"""Running chains (DESIGN.md): starting, advancing and cancelling chain executions.

Definitions (model, validation, CRUD) are agent configuration and live in ``agents``;
``services`` starts and cancels runs, ``runner`` advances one, ``tasks`` are its Celery tasks.
"""
