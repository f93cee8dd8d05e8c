"""What every agents view shares: access-rule shorthands (input checking is config.api.inputs,
the 405 before the access rules is AccessRules')."""

from __future__ import annotations

READ = ("agents:read", None)
WRITE = ("agents:write", None)
SEMVER_PATH = r"(?P<version>\d+\.\d+\.\d+)"
