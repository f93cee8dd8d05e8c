from config.env import env_bool

from .base import *  # noqa: F403

# On for manage.py under these settings (runserver, shell). ``make run`` (config.serve) turns
# it off unless DEBUG is in the environment: it is the single-box deployment, and a debug page
# shows whoever makes a view crash its traceback, local variables and settings.
DEBUG = env_bool("DEBUG", True)
