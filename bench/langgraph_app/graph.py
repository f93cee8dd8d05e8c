"""The benchmark agent as a LangGraph graph: a model node with one tool bound, a tool node,
looping until the model answers without tool calls — the same agent, fake provider and
tool as the Agentry runs it is compared with (bench/langgraph_compare.py).

Served by ``langgraph dev`` (in-memory runtime) from its own virtualenv; the fake provider's
OpenAI URL comes from ``BENCH_FAKE_OPENAI_URL``. Each model call's time is added to the
state (``model_ms``) so the benchmark can take it out of the run's time.
"""

from __future__ import annotations

import operator
import os
import time
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode


@tool
def lookup(key: str) -> dict[str, Any]:
    """Look a key up."""
    return {"key": key, "value": f"value of {key}"}


model = ChatOpenAI(
    model="gpt-4o",
    base_url=os.environ.get("BENCH_FAKE_OPENAI_URL", "http://127.0.0.1:8765/v1"),
    api_key=os.environ.get("OPENAI_API_KEY", "sk-fake-bench"),
    max_retries=0,
    timeout=120,
).bind_tools([lookup])


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    model_ms: Annotated[float, operator.add]


async def agent(state: State) -> dict[str, Any]:
    started = time.perf_counter()
    reply = await model.ainvoke(state["messages"])
    return {"messages": [reply], "model_ms": (time.perf_counter() - started) * 1000}


def route(state: State) -> str:
    last = state["messages"][-1]
    return "tools" if getattr(last, "tool_calls", None) else END


builder = StateGraph(State)
builder.add_node("agent", agent)
builder.add_node("tools", ToolNode([lookup]))
builder.add_edge(START, "agent")
builder.add_conditional_edges("agent", route, ["tools", END])
builder.add_edge("tools", "agent")
graph = builder.compile()
