"""Integrations with agent frameworks: one module per framework, imported only when
that framework is (the shared base comes with the first integration)."""
