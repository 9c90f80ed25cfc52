from dataclasses import dataclass


@dataclass
class AgentInstance:
    id: str
    agent_type: str
    current_load: int = 0
    max_capacity: int = 2
    is_healthy: bool = True


class LoadBalancer:
    """acquire() hands out the least loaded healthy instance with room, else None."""

    def __init__(self):
        self.instances = {}

    def register(self, instance):
        self.instances.setdefault(instance.agent_type, []).append(instance)

    def acquire(self, agent_type):
        room = [
            i
            for i in self.instances.get(agent_type, [])
            if i.is_healthy and i.current_load < i.max_capacity
        ]
        if not room:
            return None
        chosen = min(room, key=lambda i: i.current_load / i.max_capacity)
        chosen.current_load += 1
        return chosen

    def release(self, instance):
        instance.current_load = max(0, instance.current_load - 1)
