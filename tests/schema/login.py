"""A person logs in to the demo app through the development upstream and allows consent, so the
schema test finds a user with a grant and consent records behind the users endpoints.

usage: python3 login.py BASE_URL USERNAME

Follows redirects with a cookie jar and submits the two forms on the way (the upstream's login
form, Herald's consent page) as a browser without JavaScript would. Exits non-zero unless the
login ends on the demo app's callback page.
"""

import http.cookiejar
import sys
import urllib.parse
import urllib.request
from html.parser import HTMLParser


class Form(HTMLParser):
    """The first form of a page: its action and the fields a browser would submit."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.fields = []
        self.button = None
        self.done = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self.done:
            return
        if tag == "form" and self.action is None:
            self.action = a.get("action", "")
        elif self.action is not None and tag == "input" and "name" in a:
            if a.get("type") != "checkbox" or "checked" in a:
                self.fields.append((a["name"], a.get("value", "")))
        elif self.action is not None and tag == "button" and self.button is None and "name" in a:
            # The first button is the one that says yes (Allow).
            self.button = (a["name"], a.get("value", ""))

    def handle_endtag(self, tag):
        if tag == "form" and self.action is not None:
            self.done = True


def submit(opener, page_url, html, overrides):
    form = Form()
    form.feed(html)
    if form.action is None:
        sys.exit(f"login.py: no form on {page_url}:\n{html}")
    fields = [(k, overrides.get(k, v)) for k, v in form.fields]
    if form.button:
        fields.append(form.button)
    url = urllib.parse.urljoin(page_url, form.action)
    with opener.open(url, data=urllib.parse.urlencode(fields).encode(), timeout=10) as res:
        return res.geturl(), res.read().decode()


def main():
    base, username = sys.argv[1].rstrip("/"), sys.argv[2]
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(f"{base}/demo/login", timeout=10) as res:
        url, html = res.geturl(), res.read().decode()
    url, html = submit(opener, url, html, {"username": username, "groups": "staff"})
    if "/consent" in urllib.parse.urlparse(url).path:
        url, html = submit(opener, url, html, {})
    if urllib.parse.urlparse(url).path != "/demo/callback" or username not in html:
        sys.exit(f"login.py: the login ended on {url}:\n{html}")


if __name__ == "__main__":
    main()
