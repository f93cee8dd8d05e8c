"""The fake LLM provider over real HTTP (OpenAI, Groq and Anthropic protocols, scriptable),
shared by the benchmarks and the test-suite. It lives here, not under ``tests/``, because
``bench/`` must not import tests; the tests import it from here (``tests.fakes`` re-exports
the names a test scripts with)."""
