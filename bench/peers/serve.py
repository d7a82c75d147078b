"""The peers' side of bench/side-by-side.ts's PeerServer: after setting up, print one "ready" JSON line, then answer
each JSON request line on stdin with one JSON line on stdout until stdin ends. A handler's exception becomes
{"error": "..."} (the traceback goes to stderr) so that the benchmark can stop with the reason."""
import json
import platform
import sys
import traceback


def versions(**more):
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, **more}


def serve(handlers, ready):
    """`handlers`: op name -> function(request dict) -> JSON-able dict; `ready`: extra fields of the ready line."""
    print(json.dumps({"ready": True, **ready}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            answer = handlers[request["op"]](request)
        except Exception as err:  # noqa: BLE001 - reported to the benchmark, which stops
            traceback.print_exc()
            answer = {"error": f"{type(err).__name__}: {err}"}
        print(json.dumps(answer), flush=True)
