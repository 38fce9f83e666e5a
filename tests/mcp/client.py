"""Drives `kite mcp` with the official Python MCP client over stdio, as Claude Code would:
initialize, list tools, create a task, take a lock, search the vault. Prints one JSON line with
what it saw; the Rust test checks it. Usage: client.py KITE_EXE PROJECT_DIR"""
import asyncio, json, sys
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def text_of(result):
    return "\n".join(getattr(c, "text", "") for c in result.content)


async def main():
    kite, project = sys.argv[1], sys.argv[2]
    params = StdioServerParameters(command=kite, args=["mcp", "--name", "py-agent"], cwd=project)
    out = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            out["server"] = init.server_info.name
            tools = await session.list_tools()
            out["tools"] = sorted(t.name for t in tools.tools)
            out["schemas_ok"] = all(t.input_schema.get("type") == "object" for t in tools.tools)
            r = await session.call_tool("kite_task_create", {"title": "from mcp", "files": ["src/a.rs"]})
            out["create_error"] = r.is_error
            out["created"] = json.loads(r.content[0].text)
            r = await session.call_tool("kite_task_create", {"title": "bad", "depends_on": [999]})
            out["bad_create_error"] = r.is_error
            out["bad_create_text"] = text_of(r)
            r = await session.call_tool("kite_lock", {"path": "src/a.rs"})
            out["lock_error"] = r.is_error
            out["lock"] = json.loads(r.content[0].text)
            r = await session.call_tool("kite_lock", {"path": "../outside"})
            out["outside_error"] = r.is_error
            r = await session.call_tool("kite_vault_add", {"title": "Use sqlite WAL", "body": "We chose SQLite in WAL mode for the queue because it is durable and fast.", "kind": "decision"})
            out["add_error"] = r.is_error
            out["add_text"] = text_of(r)
            r = await session.call_tool("kite_vault_search", {"query": "which database for the task queue"})
            out["search_error"] = r.is_error
            out["search_text"] = text_of(r)
            r = await session.call_tool("kite_vault_search", {"query": "x", "k": 1000000000000})
            out["huge_k_error"] = r.is_error
            out["huge_k_text"] = text_of(r)
            r = await session.call_tool("kite_task_next", {})
            out["next"] = json.loads(r.content[0].text)
    print(json.dumps(out))


asyncio.run(main())
