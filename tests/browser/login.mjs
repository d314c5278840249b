// A person's login through Herald in real headless Chromium: the demo app sends the browser to
// Herald, Herald to the development upstream's form, back through the consent page, and the
// demo app shows the tokens. Then a second login skips consent, the person withdraws consent in
// the consent center at /account and the next login asks again. JavaScript is off throughout:
// every page must work without it. Screenshots go to artifacts/.
import assert from "node:assert/strict";
import { base, browser, check, escapedError, finish, shot } from "./harness.mjs";

try {
  const page = await (await browser.newContext({ javaScriptEnabled: false })).newPage();

  await check("a person logs in through the dev upstream and allows consent", async () => {
    await page.goto(`${base}/demo/login`);
    await page.getByLabel("User name").fill("carol");
    await page.getByLabel("Groups (comma separated)").fill("staff, herald-admins");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/consent\?/);
    assert.match(await page.textContent("h1"), /Herald demo app wants to access your account/);
    assert.match(await page.textContent("main"), /Used for: Showing you the pages of your groups \(legal basis: consent\)/);
    await shot(page, "consent-page");
    await page.getByRole("button", { name: "Allow" }).click();
    await page.waitForURL(/\/demo\/callback/);
    const text = await page.textContent("main");
    assert.match(text, /"groups": \[\s*"staff",\s*"herald-admins"\s*\]/);
    assert.match(text, /"preferred_username": "carol"/);
    assert.match(text, /"purposes": \{\s*"personalisation": true\s*\}/);
    await shot(page, "demo-tokens");
  });

  await check("the second login in the same browser skips the consent page", async () => {
    await page.goto(`${base}/demo/login`);
    await page.waitForURL(/\/demo\/callback/);
    assert.match(await page.textContent("main"), /"preferred_username": "carol"/);
  });

  await check("withdrawing in the consent center makes the next login ask again", async () => {
    await page.goto(`${base}/account`);
    const app = page.getByRole("region", { name: "Herald demo app" });
    assert.match(await app.textContent(), /Your groups/);
    assert.match(await app.textContent(), /Allowed .* UTC/);
    await shot(page, "consent-center");
    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, "consent-center-phone");
    await page.setViewportSize({ width: 1280, height: 720 });
    await app.getByRole("button", { name: "Withdraw consent for Herald demo app" }).click();
    await page.waitForURL(/\/account\?withdrawn=demo/);
    assert.match(await page.textContent("main"), /You withdrew your consent for Herald demo app/);
    assert.equal(await page.getByRole("region", { name: "Herald demo app" }).count(), 0);

    await page.goto(`${base}/demo/login`);
    await page.waitForURL(/\/consent\?/);
    assert.doesNotMatch(await page.textContent("main"), /already allowed/);
    await page.getByRole("button", { name: "Allow" }).click();
    await page.waitForURL(/\/demo\/callback/);
    assert.match(await page.textContent("main"), /"preferred_username": "carol"/);
  });

  await check("the consent records download as JSON", async () => {
    const res = await page.request.get(`${base}/account/consents.json`);
    assert.equal(res.status(), 200);
    assert.equal(res.headers()["cache-control"], "no-store");
    const methods = (await res.json()).records.map((r) => r.method);
    assert.deepEqual(methods, ["page", "consent_center", "page"]);
    const receipt = (await (await page.request.get(`${base}/account/consents.json`)).json()).records[0];
    assert.equal(receipt.locale, "en");
    assert.equal(receipt.wording.scopes.groups, "Your groups and department");
  });

  await check("a French browser sees the scopes and purposes in French, and the receipt says so", async () => {
    const fr = await (await browser.newContext({ javaScriptEnabled: false, locale: "fr-FR" })).newPage();
    await fr.goto(`${base}/demo/login`);
    await fr.getByLabel("User name").fill("elise");
    await fr.getByRole("button", { name: "Sign in" }).click();
    await fr.waitForURL(/\/consent\?/);
    const main = await fr.textContent("main");
    assert.match(main, /Vos groupes et votre service/);
    assert.match(main, /Used for: Vous montrer les pages de vos groupes/);
    await shot(fr, "consent-page-fr");
    await fr.getByRole("button", { name: "Allow" }).click();
    await fr.waitForURL(/\/demo\/callback/);
    const records = (await (await fr.request.get(`${base}/account/consents.json`)).json()).records;
    assert.equal(records[0].locale, "fr");
    assert.equal(records[0].wording.purposes.personalisation, "Vous montrer les pages de vos groupes");
  });

  await check("a German browser sees the whole consent page in German, and the receipt says so", async () => {
    const de = await (await browser.newContext({ javaScriptEnabled: false, locale: "de-DE" })).newPage();
    await de.goto(`${base}/demo/login`);
    await de.getByLabel("User name").fill("gerda");
    await de.getByRole("button", { name: "Sign in" }).click();
    await de.waitForURL(/\/consent\?/);
    const main = await de.textContent("main");
    assert.match(main, /Herald demo app möchte auf Ihr Konto zugreifen/);
    assert.match(main, /Ihr Name und Ihr Basisprofil/);
    assert.match(main, /Ihre Gruppen und Ihre Abteilung/);
    assert.match(main, /Verwendet für: Ihnen die Seiten Ihrer Gruppen zeigen \(Rechtsgrundlage: Einwilligung\)/);
    await shot(de, "consent-page-de");
    await de.getByRole("button", { name: "Erlauben" }).click();
    await de.waitForURL(/\/demo\/callback/);
    const records = (await (await de.request.get(`${base}/account/consents.json`)).json()).records;
    assert.equal(records[0].locale, "de");
  });

  await check("a single-use link opens carol's consent center in a browser signed in nowhere", async () => {
    const token = process.env.HERALD_ADMIN_TOKEN;
    assert.ok(token, "HERALD_ADMIN_TOKEN is set by scripts/browser-test.sh");
    await page.goto(`${base}/demo/login`);
    await page.waitForURL(/\/demo\/callback/);
    const sub = (await page.textContent("main")).match(/"sub": "([^"]+)"/)[1];
    const res = await page.request.post(`${base}/admin/api/users/${sub}/account-link`,
      { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status(), 201);
    const { url } = await res.json();
    const other = await (await browser.newContext({ javaScriptEnabled: false })).newPage();
    await other.goto(url);
    await shot(other, "account-link");
    await other.getByRole("button", { name: "Open my consents" }).click();
    await other.waitForURL(/\/account$/);
    assert.match(await other.textContent("main"), /You opened this page with a link/);
    assert.equal(await other.getByRole("region", { name: "Herald demo app" }).count(), 1);
    assert.equal(await other.getByText("Download everything Herald holds about you").count(), 0);
    await shot(other, "account-by-link");
    await other.setViewportSize({ width: 390, height: 844 });
    await shot(other, "account-by-link-phone");
    const again = await (await browser.newContext({ javaScriptEnabled: false })).newPage();
    await again.goto(url);
    await again.getByRole("button", { name: "Open my consents" }).click();
    assert.match(await again.textContent("main"), /This link was already used/);
    await shot(again, "account-link-used");
  });

  await check("a fresh browser that denies consent is told access was denied", async () => {
    const other = await (await browser.newContext()).newPage();
    await other.goto(`${base}/demo/login`);
    await other.getByLabel("User name").fill("dave");
    await other.getByRole("button", { name: "Sign in" }).click();
    await other.waitForURL(/\/consent\?/);
    await other.getByRole("button", { name: "Deny" }).click();
    await other.waitForURL(/\/demo\/callback/);
    assert.match(await other.textContent("main"), /error=access_denied/);
  });
  await check("the consent page names who is signed in, and 'Not you?' signs in someone else", async () => {
    const other = await (await browser.newContext({ javaScriptEnabled: false })).newPage();
    await other.goto(`${base}/demo/login`);
    await other.getByLabel("User name").fill("grace");
    await other.getByRole("button", { name: "Sign in" }).click();
    await other.waitForURL(/\/consent\?/);
    assert.match(await other.textContent("main"), /Signed in as grace/);
    await shot(other, "consent-signed-in-as");
    await other.getByRole("link", { name: "Not you? Use another account" }).click();
    await other.getByLabel("User name").fill("heidi");
    await other.getByRole("button", { name: "Sign in" }).click();
    await other.waitForURL(/\/consent\?/);
    assert.match(await other.textContent("main"), /Signed in as heidi/);
    await other.getByRole("button", { name: "Allow" }).click();
    await other.waitForURL(/\/demo\/callback/);
    assert.match(await other.textContent("main"), /"preferred_username": "heidi"/);
  });

  await check("the consent center signs out", async () => {
    await page.goto(`${base}/account`);
    await page.getByRole("link", { name: "Sign out of Herald" }).click();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.goto(`${base}/account`);
    // Signed out: the consent center asks to sign in at the upstream again.
    assert.match(await page.textContent("body"), /User name/);
  });
} catch (e) {
  escapedError(e);
} finally {
  await finish();
}
