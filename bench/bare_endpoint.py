"""The baseline for ``bench.agent_rpc``: a bare Starlette endpoint over the same HTTPS stack that
reads the body and answers a fixed CloudStack-shaped answer, doing no parsing or work."""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ANSWER = (b'[{"com.cloud.agent.api.Answer":{"result":true,'
          b'"details":"success - NOP for PingRoutingCommand","contextMap":{}}}]')


async def echo(request: Request) -> Response:
    await request.body()
    return Response(ANSWER, media_type="application/json; charset=utf-8")


app = Starlette(routes=[Route("/api/HypervResource/{fqcn:str}", echo, methods=["POST"])])

if __name__ == "__main__":
    host, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    uvicorn.run(app, host=host, port=port, ssl_certfile=cert, ssl_keyfile=key, log_level="warning",
                access_log=False, timeout_keep_alive=75, server_header=False)
