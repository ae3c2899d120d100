"""The one HTTP helper of the benchmark scripts (bench-tenant.py, bench-memory.py,
bench-propagation.py): standard library only, loopback servers only."""
import base64
import json
import urllib.error
import urllib.parse
import urllib.request


def call(method, url, body=None, token=None, form=None, basic=None, timeout=600):
    """Sends one request and returns (status, body bytes), error statuses included. `form` is
    sent url-encoded, `body` as JSON; `token` as a Bearer credential, `basic` ("id:secret") as
    HTTP Basic."""
    headers = {}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    if token:
        headers["authorization"] = "Bearer " + token
    if basic:
        headers["authorization"] = "Basic " + base64.b64encode(basic.encode()).decode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
