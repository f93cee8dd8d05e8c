"""The language of an agent's trigger configuration, and of chain-step conditions.

Pure rules, no Django: cron expressions and timezones (``cron``), event types and the
patterns that select them (``patterns``), and the small condition language (``conditions``).
Agents' validation checks a configuration with them; running triggers and chains
(``executions.triggers``, ``executions.chains``) evaluates them.
"""
