"""What starts runs without a person pressing a button: cron schedules, posted events and
inbound webhooks (DESIGN.md §9). Each trigger starts runs through
``executions.services.execution_start`` with its trigger_type, and records a refused attempt
(``TriggerAttempt``) instead of running when a limit says no.
"""
