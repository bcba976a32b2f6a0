"""Nuclio handler of docs/cvat/function.yaml: forwards CVAT's interactor request to the isegm
annotation server (standard library only, so the function image needs no packages)."""

import json
import os
import urllib.error
import urllib.request


def init_context(context):
    # no default: 127.0.0.1 would be this function's own container
    context.user_data.url = os.environ.get("ISEGM_URL", "").strip().rstrip("/")
    context.user_data.token = os.environ.get("ISEGM_TOKEN", "")


def handler(context, event):
    if not context.user_data.url:
        message = ("ISEGM_URL is not set: deploy the function with --env ISEGM_URL=http://<the "
                   "isegm server's host>:8000 (not 127.0.0.1, the function's own container)")
        return context.Response(body=json.dumps({"error": message}), headers={},
                                content_type="application/json", status_code=500)
    body = event.body
    if not isinstance(body, (bytes, bytearray)):  # nuclio parses JSON bodies into a dict
        body = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if context.user_data.token:
        headers["Authorization"] = "Bearer " + context.user_data.token
    request = urllib.request.Request(
        context.user_data.url + "/cvat/interactor", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=55) as r:
            status, payload = r.status, r.read()
    except urllib.error.HTTPError as e:  # the server's {"error": ...} message goes to CVAT
        status, payload = e.code, e.read()
    return context.Response(
        body=payload, headers={}, content_type="application/json", status_code=status
    )
