"""A Celery app on kombu's filesystem transport (no broker server): ``plan`` calls the agent.

The broker's folder is ``MP_BROKER_DIR``."""

import os

import mp_agents
from celery import Celery

folder = os.environ["MP_BROKER_DIR"]
app = Celery("tasks", broker="filesystem://")
app.conf.update(
    broker_transport_options={
        "data_folder_in": folder,
        "data_folder_out": folder,
        "control_folder": folder,
    },
    worker_hijack_root_logger=False,
    task_ignore_result=True,
)


@app.task
def plan(delay: float) -> int:
    return mp_agents.planner(delay)
