"""The console's own pages beside the admin's model pages: the agent playground (run a
version with a task, watch its steps arrive, approve or deny a held call inline, compare two
versions) and Re-run. Top of the layering: it drives agents, executions and approvals through
their services, as the API does."""
