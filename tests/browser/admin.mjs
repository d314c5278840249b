// An admin's session in real headless Chromium, with JavaScript off: the admin signs in through
// Herald (the dev upstream's user carries the herald-admins group that the default
// configuration's [admin] role asks for), sees that the `department` claim is unmapped, adds an
// attribute and a mapping for it, is shown a validation error inline, previews the unsaved rows,
// saves, and the next person's login through the demo app carries the new claim in its ID token.
// Screenshots go to the artifacts folder.
import assert from "node:assert/strict";
import { base, browser, check, escapedError, finish, shot } from "./harness.mjs";

try {
  const page = await (await browser.newContext({ javaScriptEnabled: false })).newPage();

  await check("an admin signs in through Herald with the role a mapping grants", async () => {
    await page.goto(`${base}/admin`);
    await page.getByLabel("User name").fill("erin");
    await page.getByLabel("Groups (comma separated)").fill("staff, herald-admins");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${base}/admin`);
    assert.match(await page.textContent("h1"), /Herald administration/);
    assert.match(await page.textContent("nav"), /Signed in as erin/);
    await shot(page, "admin-overview");
  });

  await check("lineage shows that nothing maps the department claim yet", async () => {
    await page.getByRole("link", { name: "Claim lineage" }).click();
    const row = page.getByRole("table", { name: "Claim lineage" }).locator("tr", { hasText: "department" });
    assert.match(await row.textContent(), /no upstream maps this claim/);
    const declared = page.getByRole("table", { name: "Declared context" });
    assert.match(await declared.locator("tr", { hasText: "department" }).textContent(), /no mapping/);
    await shot(page, "admin-lineage-before");
  });

  await check("an invalid mapping is refused with the message next to its row", async () => {
    await page.getByRole("link", { name: "Overview" }).click();
    await page.getByRole("link", { name: "Edit claim mapping of dev" }).click();
    await page.waitForURL(`${base}/admin/upstreams/dev`);
    // Row 2 of each table is the first empty one (the default configuration has one of each).
    await page.getByLabel("Attribute 2 claim").fill("https://example\\.com/department");
    await page.getByLabel("Attribute 2 type").selectOption("string");
    await page.getByLabel("Mapping 2 from").fill("https://example\\.com/department");
    await page.getByLabel("Mapping 2 to").fill("sub");
    await page.getByRole("button", { name: "Save attributes and mappings" }).click();
    const error = page.locator("#map-1-error");
    assert.match(await error.textContent(), /mappings\[1\].*sub/);
    assert.equal(await page.getByLabel("Mapping 2 to").inputValue(), "sub");
    await shot(page, "admin-inline-error");
  });

  await check("the preview runs the unsaved rows on sample claims", async () => {
    await page.getByLabel("Mapping 2 to").fill("department");
    await page.getByLabel("Sample ID-token claims (JSON)").fill(JSON.stringify({
      sub: "sample", name: "Sample", "https://example.com/groups": ["staff"],
      "https://example.com/department": "Research",
    }, null, 2));
    await page.getByRole("button", { name: "Preview" }).click();
    const idToken = JSON.parse(await page.getByLabel("Preview ID token").textContent());
    assert.equal(idToken.department, "Research");
    assert.deepEqual(idToken.groups, ["staff"]);
    await shot(page, "admin-preview");
  });

  await check("saving applies the mapping at once", async () => {
    await page.getByRole("button", { name: "Save attributes and mappings" }).click();
    await page.waitForURL(/\/admin\/upstreams\/dev\?saved=\d+/);
    assert.match(await page.textContent("main"), /Saved as configuration version \d+/);
    assert.equal(await page.getByLabel("Mapping 2 to").inputValue(), "department");
    await shot(page, "admin-saved");
  });

  await check("a computed mapping with a condition previews each step", async () => {
    await page.getByLabel("Mapping 3 expression").fill("id_token['https://example.com/groups'].map(g, 'team:' + g)");
    await page.getByLabel("Mapping 3 condition").fill("has(id_token.name)");
    await page.getByLabel("Mapping 3 to").fill("teams");
    await page.getByLabel("Sample ID-token claims (JSON)").fill(JSON.stringify({
      sub: "sample", name: "Sample", "https://example.com/groups": ["staff", "ops"],
    }, null, 2));
    await page.getByRole("button", { name: "Preview" }).click();
    const steps = await page.getByRole("table", { name: "Preview steps" }).textContent();
    assert.match(steps, /when has\(id_token\.name\)/);
    assert.match(steps, /"team:staff","team:ops"/);
    const context = JSON.parse(await page.getByLabel("Preview context").textContent());
    assert.deepEqual(context.teams, ["team:staff", "team:ops"]);
    await shot(page, "admin-preview-steps");
  });

  await check("the next login's ID token carries the new claim", async () => {
    const user = await (await browser.newContext({ javaScriptEnabled: false })).newPage();
    await user.goto(`${base}/demo/login`);
    await user.getByLabel("User name").fill("frank");
    await user.getByLabel("Department").fill("Research");
    await user.getByRole("button", { name: "Sign in" }).click();
    await user.waitForURL(/\/consent\?/);
    await user.getByRole("button", { name: "Allow" }).click();
    await user.waitForURL(/\/demo\/callback/);
    const text = await user.textContent("main");
    assert.match(text, /"department": "Research"/);
    assert.match(text, /"preferred_username": "frank"/);
    await shot(user, "admin-next-login-id-token");
  });

  await check("the audit log names the admin and the change", async () => {
    await page.getByRole("link", { name: "Audit log" }).click();
    const row = page.locator("tr", { hasText: "upstream.claims.replace" }).first();
    assert.match(await row.textContent(), /user:/);
    assert.match(await row.textContent(), /upstream:dev/);
    await shot(page, "admin-audit");
  });

  await check("someone without the admin role is refused", async () => {
    const other = await (await browser.newContext({ javaScriptEnabled: false })).newPage();
    await other.goto(`${base}/admin`);
    await other.getByLabel("User name").fill("mallory");
    await other.getByLabel("Groups (comma separated)").fill("staff");
    await other.getByRole("button", { name: "Sign in" }).click();
    await other.waitForURL(`${base}/admin`);
    assert.match(await other.textContent("h1"), /You are not an admin/);
    await shot(other, "admin-refused");
  });
  await check("a client's secret is rotated on its page and both work for the grace period", async () => {
    await page.goto(`${base}/admin/clients`);
    await page.getByLabel("client_id").fill("reports");
    await page.getByLabel("Redirect URIs (one per line, exact match)").fill("http://127.0.0.1:9000/cb");
    await page.getByLabel("Scopes it may ask for (space separated)").fill("openid");
    await page.getByRole("button", { name: "Register" }).click();
    const first = (await page.getByLabel("Client secret").textContent()).trim();
    await page.goto(`${base}/admin/clients/reports`);
    await page.getByLabel("The current secret keeps working for").selectOption("1h");
    await page.getByRole("button", { name: "Rotate secret" }).click();
    const second = (await page.getByLabel("New client secret").textContent()).trim();
    assert.equal(second.length, 43);
    assert.notEqual(second, first);
    assert.match(await page.textContent("main"), /The previous secret keeps working until/);
    await shot(page, "admin-secret-rotated");
    // Both authenticate: the client may not use client_credentials, which is what /token says
    // once it knows who is asking (a wrong secret is invalid_client).
    for (const [secret, expected] of [[first, "unauthorized_client"], [second, "unauthorized_client"],
                                      ["wrong", "invalid_client"]]) {
      const res = await fetch(`${base}/token`, {
        method: "POST",
        headers: { authorization: `Basic ${Buffer.from(`reports:${secret}`).toString("base64")}`,
                   "content-type": "application/x-www-form-urlencoded" },
        body: "grant_type=client_credentials",
      });
      assert.equal((await res.json()).error, expected);
    }
    await page.reload();
    assert.doesNotMatch(await page.textContent("main"), new RegExp(second), "shown once");
  });

  await check("the upstreams page shows the callback URL, and Test connection checks the upstream", async () => {
    await page.goto(`${base}/admin`);
    await page.getByRole("link", { name: "Upstreams" }).first().click();
    await page.waitForURL(`${base}/admin/upstreams`);
    assert.match(await page.textContent("main"), new RegExp(`${base}/callback/dev`));
    await shot(page, "admin-upstreams");
    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, "admin-upstreams-phone");
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= 390, `no horizontal scrolling at 390 px (${wide})`);
    await page.setViewportSize({ width: 1280, height: 720 });
    await page.getByRole("link", { name: /Development login/ }).first().click();
    await page.getByRole("button", { name: "Test connection" }).click();
    const result = await page.getByLabel("Connection test").textContent();
    assert.match(result, /discovery/);
    await shot(page, "admin-upstream-tested");
  });

  await check("an admin adds an upstream with its secret typed in, tests it and changes its settings", async () => {
    const secret = "typed-upstream-secret-4b1d";
    await page.goto(`${base}/admin/upstreams`);
    await page.getByLabel(/^Id \(/).fill("second");
    await page.getByLabel("Name people see when choosing how to sign in").fill("Second");
    await page.getByLabel("Kind").selectOption("oidc");
    await page.getByLabel(/^Issuer/).fill(`${base}/dev-upstream`);
    await page.getByLabel("Herald's client ID at the upstream").fill("herald");
    await page.getByLabel(/Type or paste it/).fill(secret);
    await page.getByRole("button", { name: "Add upstream" }).click();
    await page.waitForURL(/\/admin\/upstreams\/second\?created=\d+/);
    assert.match(await page.getByLabel("Current secret").textContent(),
                 /Now from stored, encrypted with the key-encryption key/);
    assert.ok(!(await page.content()).includes(secret), "the secret is never shown again");
    assert.equal(await page.getByLabel(/Type or paste it/).inputValue(), "");
    await page.getByRole("button", { name: "Test connection" }).click();
    assert.match(await page.getByLabel("Connection test").textContent(), /discovery/);
    await page.getByLabel("Name people see when choosing how to sign in").fill("Second provider");
    await page.getByLabel("End the upstream's session too when a user signs out of Herald").check();
    await page.getByLabel("Who may sign in through it").selectOption("existing");
    await page.getByLabel("Link a first login to the user who has the same verified email").check();
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.waitForURL(/\/admin\/upstreams\/second\?saved=\d+/);
    assert.match(await page.textContent("h1"), /Second provider/);
    assert.ok(await page.getByLabel("End the upstream's session too when a user signs out of Herald").isChecked());
    assert.equal(await page.getByLabel("Who may sign in through it").inputValue(), "existing");
    assert.ok(await page.getByLabel("Link a first login to the user who has the same verified email").isChecked());
    assert.match(await page.getByLabel("Current secret").textContent(), /stored, encrypted/,
                 "saving with the secret left empty keeps it");
    await page.locator("#settings").scrollIntoViewIfNeeded();
    await shot(page, "admin-upstream-settings");
    await page.setViewportSize({ width: 390, height: 844 });
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    await shot(page, "admin-upstream-settings-phone");
    await page.setViewportSize({ width: 1280, height: 720 });
    assert.ok(wide <= 390, `no horizontal scrolling at 390 px (${wide})`);
    // Deleted again: the role checks below sign in with the development upstream alone.
    await page.getByRole("button", { name: "Delete second" }).click();
    await page.waitForURL(`${base}/admin/upstreams`);
  });

  await check("the keys page lists the published keys and offers a rotation", async () => {
    await page.getByRole("link", { name: "Keys" }).click();
    await page.waitForURL(`${base}/admin/keys`);
    const jwks = await (await page.request.get(`${base}/jwks`)).json();
    const text = await page.textContent("main");
    for (const k of jwks.keys) assert.ok(text.includes(k.kid), `${k.kid} listed`);
    assert.equal(await page.getByRole("button", { name: "Rotate key" }).count(), 1);
    await page.getByRole("button", { name: "Rotate key" }).click();
    await page.waitForURL(/\/admin\/keys\?rotated=/);
    assert.match(await page.textContent("main"), /is published/);
    await shot(page, "admin-keys");
  });

  await check("an admin edits a scope's words in German and adds a scope", async () => {
    await page.goto(`${base}/admin`);
    await page.getByRole("link", { name: "Scopes" }).click();
    await page.waitForURL(`${base}/admin/scopes`);
    await page.getByRole("link", { name: "groups", exact: true }).click();
    await page.waitForURL(`${base}/admin/scopes/groups`);
    await page.getByLabel(/… in German/).fill("Ihre Gruppen und Abteilung (geändert)");
    await page.getByRole("button", { name: "Save scope" }).click();
    await page.waitForURL(/\/admin\/scopes\/groups\?saved=\d+/);
    assert.equal(await page.getByLabel(/… in German/).inputValue(), "Ihre Gruppen und Abteilung (geändert)");
    await shot(page, "admin-scope");
    await page.getByRole("link", { name: "Scopes" }).click();
    await page.getByLabel(/^Name \(the word apps/).fill("read:reports");
    await page.getByLabel("What the consent page says for it, in English").fill("Read your reports");
    await page.getByLabel("Claims it releases", { exact: false }).fill("department -> access_token");
    await page.getByRole("button", { name: "Add scope" }).click();
    await page.waitForURL(/\/admin\/scopes\/read%3Areports\?saved=\d+/);
    assert.match(await page.textContent("h1"), /read:reports \(custom\)/);
    await page.getByRole("button", { name: "Delete read:reports" }).click();
    await page.waitForURL(`${base}/admin/scopes`);
    assert.doesNotMatch(await page.locator("table").textContent(), /read:reports/);
    await shot(page, "admin-scopes");
  });

  await check("an admin finds a user by email, blocks them, and reads the refusal in the login events", async () => {
    const login = async () => {
      const p = await (await browser.newContext({ javaScriptEnabled: false })).newPage();
      await p.goto(`${base}/demo/login`);
      await p.getByLabel("User name").fill("grace");
      await p.getByRole("button", { name: "Sign in" }).click();
      return p;
    };
    const first = await login();
    await first.waitForURL(/\/consent\?/);
    await page.goto(`${base}/admin/users`);
    await page.getByLabel(/Search by email/).fill("GRACE@example");
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByRole("link", { name: "grace@example.com" }).click();
    await page.getByRole("button", { name: "Block user" }).click();
    await page.waitForURL(/blocked=true/);
    assert.match(await page.textContent("main"), /The user is blocked/);
    await shot(page, "admin-user-blocked");
    const again = await login();
    await again.getByRole("heading", { name: "Your account is blocked" }).waitFor();
    await page.getByRole("link", { name: "Login events", exact: true }).click();
    await page.getByLabel("Result").selectOption("blocked");
    await page.getByRole("button", { name: "Filter" }).click();
    assert.match(await page.locator("table").textContent(), /grace@example\.com[\s\S]*the user is blocked/);
    await shot(page, "admin-logins");
    await page.goto(`${base}/admin/users`);
    await page.getByRole("link", { name: "grace@example.com" }).click();
    await page.getByRole("button", { name: "Unblock user" }).click();
    await page.waitForURL(/blocked=false/);
  });

  await check("every admin page fits a 390 px wide phone without scrolling sideways", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const wide = [];
    for (const path of ["/admin", "/admin/upstreams", "/admin/upstreams/dev", "/admin/clients",
                        "/admin/clients/demo", "/admin/clients/reports", "/admin/lineage",
                        "/admin/keys", "/admin/users", "/admin/audit", "/admin/scopes",
                        "/admin/scopes/groups", "/admin/logins"]) {
      await page.goto(`${base}${path}`);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      if (width > 390) wide.push(`${path}: ${width} px`);
      await shot(page, `phone${path.replaceAll("/", "-")}`);
    }
    await page.setViewportSize({ width: 1280, height: 720 });
    assert.deepEqual(wide, []);
  });

  for (const [role, group] of [["editor", "herald-editors"], ["auditor", "herald-auditors"]]) {
    await check(`an ${role} sees the pages their role allows and no more`, async () => {
      const p = await (await browser.newContext({ javaScriptEnabled: false })).newPage();
      await p.goto(`${base}/admin/clients`);
      await p.getByLabel("User name").fill(role);
      await p.getByLabel("Groups (comma separated)").fill(`staff, ${group}`);
      await p.getByRole("button", { name: "Sign in" }).click();
      await p.waitForURL(`${base}/admin/clients`);
      const nav = await p.textContent("nav");
      assert.match(nav, new RegExp(`Signed in as ${role} \\(${role}\\)`));
      assert.match(nav, /Sign out/);
      const registers = await p.getByRole("button", { name: "Register" }).count();
      const users = await p.getByRole("link", { name: "Users" }).count();
      if (role === "editor") {
        assert.equal(registers, 1);
        assert.equal(users, 0);
        await p.goto(`${base}/admin/users`);
        assert.match(await p.textContent("h1"), /Your role does not allow this/);
      } else {
        assert.equal(registers, 0);
        assert.equal(users, 1);
        assert.match(await p.textContent("main"), /may read these pages but not change anything/);
        await p.goto(`${base}/admin/clients/reports`);
        assert.equal(await p.getByRole("button", { name: "Save" }).count(), 0);
        assert.equal(await p.getByRole("button", { name: "Rotate secret" }).count(), 0);
      }
      await shot(p, `admin-role-${role}`);
    });
  }
} catch (e) {
  escapedError(e);
} finally {
  await finish();
}
