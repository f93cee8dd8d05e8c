"""The built-in tools: their definitions (``definitions``) and handlers (one module per kind).

The table of handlers by key is ``tools/handlers.py``; this package imports nothing, so that
loading a definition or ``base`` does not load every handler (and what they import).
"""
