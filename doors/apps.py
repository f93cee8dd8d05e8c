from django.apps import AppConfig


class DoorsConfig(AppConfig):
    """The protocol doors: other ecosystems' clients reach Agentry's agents through their own
    wire formats (MCP at ``/mcp/``, the OpenAI API at ``/openai/v1/``, A2A at ``/a2a/``), each
    request an ordinary durable execution."""

    name = "doors"
    verbose_name = "Protocol doors"
