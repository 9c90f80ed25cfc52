"""LangGraph under opentelemetry-instrument: imported after start-up, no agentstat code.

team (a graph of two agents) runs once: researcher calls lookup once, then writer;
researcher also runs alone twice (invoke and stream).
"""

import pathlib
import sys
import time
import warnings

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph

warnings.simplefilter("ignore")
from langgraph.prebuilt import create_react_agent  # noqa: E402


class FakeChat(BaseChatModel):
    @property
    def _llm_type(self):
        return "fake"

    def bind_tools(self, tools, **kwargs):
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        last = messages[-1]
        if isinstance(last, HumanMessage) and last.content == "use lookup":
            call = {"name": "lookup", "args": {"q": "x"}, "id": "c1"}
            message = AIMessage(content="", tool_calls=[call])
        else:
            message = AIMessage(content="done")
        return ChatResult(generations=[ChatGeneration(message=message)])


@tool
def lookup(q: str) -> str:
    """Look something up."""
    return f"found {q}"


researcher = create_react_agent(FakeChat(), [lookup], name="researcher")
writer = create_react_agent(FakeChat(), [], name="writer")


def research(state):
    return {"messages": researcher.invoke(state)["messages"][-1:]}


def write(state):
    return {"messages": writer.invoke({"messages": [HumanMessage("write")]})["messages"][-1:]}


graph = StateGraph(MessagesState)
graph.add_node("research", research)
graph.add_node("write", write)
graph.add_edge(START, "research")
graph.add_edge("research", "write")
graph.add_edge("write", END)
team = graph.compile(name="team")

team.invoke({"messages": [HumanMessage("use lookup")]})
researcher.invoke({"messages": [HumanMessage("hello")]})
for _ in researcher.stream({"messages": [HumanMessage("hello")]}):
    pass

pathlib.Path(sys.argv[1]).write_text("done")
time.sleep(120)
