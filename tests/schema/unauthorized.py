"""Every operation of the admin API refuses a request without credentials, and one with a wrong
token: 401, a `WWW-Authenticate: Bearer` challenge, and the `invalid_token` JSON error.

usage: python3 unauthorized.py BASE_URL TOKEN

The operations come from the OpenAPI document itself (read with TOKEN), so a new endpoint is
checked as soon as it is documented. A request with a body carries `{}`, which no admin body
accepts: a 401 then shows that credentials are checked before the body is read.
"""

import json
import re
import sys
import urllib.error
import urllib.request

METHODS = {"get", "put", "post", "delete", "patch"}


def call(method, url, token=None, body=None):
    req = urllib.request.Request(url, method=method.upper(), data=body)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, res.headers, res.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def refused(method, url, token, body):
    """Problems with the answer to one unauthenticated request; empty when it is refused right."""
    status, headers, raw = call(method, url, token, body)
    problems = []
    if status != 401:
        problems.append(f"status {status}, not 401")
    challenge = headers.get("WWW-Authenticate", "")
    if not challenge.startswith("Bearer"):
        problems.append(f"WWW-Authenticate is `{challenge}`, not a Bearer challenge")
    if not headers.get("Content-Type", "").startswith("application/json"):
        problems.append(f"Content-Type is `{headers.get('Content-Type')}`")
    else:
        error = json.loads(raw).get("error")
        if error != "invalid_token":
            problems.append(f"error is `{error}`, not invalid_token")
    return problems


def main():
    base, token = sys.argv[1].rstrip("/"), sys.argv[2]
    status, _, raw = call("get", f"{base}/admin/api/openapi.json", token)
    if status != 200:
        sys.exit(f"unauthorized.py: the OpenAPI document answered {status} with the token")
    doc = json.loads(raw)
    operations = [("get", "/admin/api/openapi.json", False)]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                operations.append((method, path, "requestBody" in op))
    # The document lists 20 operations today; far fewer means it was not read right.
    if len(operations) < 20:
        sys.exit(f"unauthorized.py: only {len(operations)} operations in the document")

    passed = failed = 0
    for method, path, has_body in operations:
        url = base + re.sub(r"\{[^}]+\}", "x", path)
        body = b"{}" if has_body else None
        for label, credential in [("no token", None), ("a wrong token", "not-the-admin-token")]:
            problems = refused(method, url, credential, body)
            for problem in problems:
                print(f"{method.upper()} {path} with {label}: {problem}", file=sys.stderr)
            failed += bool(problems)
            passed += not problems
    print(f"unauthorized: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
