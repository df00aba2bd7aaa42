#!/usr/bin/env python3
"""Reads every Responses client output among the golden fixtures (tests/golden/responses-to-*/)
with the official `openai` Python SDK: whole responses through `client.responses.create`, streams
through `client.responses.stream` (the SDK's event accumulator, which raises on events out of
order). Served by an in-process mock transport; no network.

Usage: python3 tests/golden/check_responses_with_sdk.py   (needs `pip install openai`)
Exit 1 when the SDK rejects an output that is not an error stream.
"""
import glob
import os
import sys

from openai import OpenAI

try:  # newer SDKs ship their own httpx fork
    import httpx2 as httpx
except ImportError:
    import httpx

HERE = os.path.dirname(os.path.abspath(__file__))


def client_for(body, content_type):
    def handler(_request):
        return httpx.Response(200, content=body, headers={"content-type": content_type})

    return OpenAI(
        api_key="x",
        base_url="http://gateway/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )


def main():
    fails = 0
    for path in sorted(glob.glob(os.path.join(HERE, "responses-to-*", "*.stream.out.sse"))):
        name = os.path.relpath(path, HERE)
        body = open(path, "rb").read()
        terminal_error = b"event: error\n" in body or b"event: response.incomplete\n" in body
        try:
            with client_for(body, "text/event-stream").responses.stream(model="m", input="hi") as s:
                for _ in s:
                    pass
                final = s.get_final_response()
            print(f"ok   {name}: {final.status}, {final.output_text[:40]!r}")
        except Exception as e:  # the SDK raises when no response.completed arrives
            if terminal_error and "response.completed" in str(e):
                print(f"ok   {name}: ends without response.completed, as it should")
            else:
                print(f"FAIL {name}: {type(e).__name__}: {e}")
                fails += 1
    for path in sorted(glob.glob(os.path.join(HERE, "responses-to-*", "*.response.out.json"))):
        name = os.path.relpath(path, HERE)
        try:
            r = client_for(open(path, "rb").read(), "application/json").responses.create(
                model="m", input="hi"
            )
            print(f"ok   {name}: {r.status}, {[o.type for o in r.output]}")
        except Exception as e:
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            fails += 1
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
