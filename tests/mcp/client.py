"""The official MCP Python client (PyPI `mcp`) against a running node's /mcp.

Usage: client.py URL SCENARIO_JSON. The scenario names the keys and ids; the script runs every
step with its own session (initialize, list tools, call tools) and prints one JSON report on
stdout, which the Rust test (tests/api/mcp.rs) checks. A call that raises is reported with its
error, so a protocol failure shows up in the report rather than as a crash here.
"""

import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def result_of(result):
    """What a tool call gave: isError and the structured content (or the text)."""
    structured = result.structured_content
    if structured is None and result.content:
        try:
            structured = json.loads(result.content[0].text)
        except (ValueError, AttributeError):
            structured = {"text": getattr(result.content[0], "text", None)}
    return {"isError": bool(result.is_error), "value": structured}


async def session_run(url, key, calls):
    """One client session with `key`: initialize, list tools, then each call in order. A call's
    arguments may name an earlier result: {"$ref": [call index, key, key...]}."""
    report = {"calls": []}
    headers = {"X-API-Key": key}
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                report["server"] = init.server_info.name
                tools = await session.list_tools()
                report["tools"] = sorted(t.name for t in tools.tools)
                report["schemas"] = {t.name: t.input_schema for t in tools.tools}
                for name, arguments in calls:
                    arguments = resolve(arguments, report["calls"])
                    try:
                        result = await session.call_tool(name, arguments)
                        report["calls"].append(result_of(result))
                    except Exception as error:  # reported, judged by the Rust test
                        report["calls"].append({"raised": repr(error)})
    return report


def resolve(value, done):
    if isinstance(value, dict):
        if set(value) == {"$ref"}:
            index, *path = value["$ref"]
            found = done[index]["value"]
            for step in path:
                found = found[step]
            return found
        return {k: resolve(v, done) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, done) for v in value]
    return value


async def main():
    url, scenario = sys.argv[1], json.loads(sys.argv[2])
    report = {}
    for name, part in scenario.items():
        try:
            report[name] = await session_run(url, part["key"], part["calls"])
        except Exception as error:
            report[name] = {"refused": repr(error)}
    print(json.dumps(report))


asyncio.run(main())
