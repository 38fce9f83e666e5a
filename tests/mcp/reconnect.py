"""Drives one `kite mcp` across a daemon restart, as an agent whose session outlives its daemon:
a call, then (once the test has restarted the daemon and created FLAG) more calls on the same
MCP server. Prints "created" after the first call, then one JSON line with what it saw.
Usage: reconnect.py KITE_EXE PROJECT_DIR FLAG"""
import asyncio, json, os, sys, time
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def text_of(result):
    return "\n".join(getattr(c, "text", "") for c in result.content)


async def main():
    kite, project, flag = sys.argv[1], sys.argv[2], sys.argv[3]
    params = StdioServerParameters(command=kite, args=["mcp", "--name", "survivor"], cwd=project)
    out = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            r = await session.call_tool("kite_task_create", {"title": "before the restart"})
            out["before_error"] = r.is_error
            print("created", flush=True)
            deadline = time.time() + 60
            while not os.path.exists(flag) and time.time() < deadline:
                await asyncio.sleep(0.05)
            r = await session.call_tool("kite_task_list", {})
            out["list_error"] = r.is_error
            out["list_text"] = text_of(r)
            r = await session.call_tool("kite_task_create", {"title": "after the restart"})
            out["after_error"] = r.is_error
            out["after_text"] = text_of(r)
    print(json.dumps(out), flush=True)


asyncio.run(main())
