"""WSGI app for gunicorn: /fast and /slow call the agent, /health does not."""

import os

import mp_agents


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path != "/health":
        mp_agents.planner(0.06 if path == "/slow" else 0.0)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
