"""Nuclio handler of docs/cvat/function.yaml: forwards CVAT's interactor request to the isegm
annotation server (standard library only, so the function image needs no packages)."""

import json
import os
import urllib.error
import urllib.request


def init_context(context):
    context.user_data.url = os.environ.get("ISEGM_URL", "http://127.0.0.1:8000").rstrip("/")
    context.user_data.token = os.environ.get("ISEGM_TOKEN", "")


def handler(context, event):
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
