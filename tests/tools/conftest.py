from tests.tools.fixtures import *  # noqa: F403
