//! One askama struct per page. Templates live in `templates/` and extend `base.html`; askama
//! escapes every value, so client names and URIs can never inject markup.

use askama::Template;

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub issuer: String,
    pub has_demo: bool,
    /// Where the admin pages are: `/admin`, or on the admin listener.
    pub admin_url: String,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub title: String,
    pub message: String,
    pub back_url: Option<String>,
    pub back_app: String,
}

/// One scope on the consent page.
pub struct ScopeRow {
    pub name: String,
    pub description: String,
    /// Shown with a checkbox (checked by default) so the user may leave it out.
    pub optional: bool,
    /// Granted before: shown as such, not asked again.
    pub granted: bool,
    /// What the data is used for (the scope's purpose), in the page's locale.
    pub purpose: Option<String>,
    /// The purpose's legal basis, readable (`consent`, `legitimate interest`).
    pub legal_basis: Option<String>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    /// The page's own words, in its locale.
    pub t: &'static super::texts::ConsentTexts,
    /// The title and heading, with the app's name in them.
    pub title: String,
    pub heading: String,
    /// The line before the app's policy and terms links.
    pub app_documents: String,
    pub app_name: String,
    pub redirect_host: String,
    pub request_id: String,
    pub csrf: String,
    /// The locale the page is shown in; posted back, vouched for by `csrf`.
    pub locale: String,
    pub scopes: Vec<ScopeRow>,
    /// Who is signed in: their name, else Herald's `sub` for them.
    pub signed_in_as: String,
    /// Where "Not you?" leads: the upstream login again, asking who is there.
    pub switch_url: String,
    pub logo_uri: Option<String>,
    pub client_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
}

/// One scope of a grant in the consent center.
pub struct AccountScope {
    pub name: String,
    pub description: String,
}

/// One app the user has allowed, with its withdraw form.
pub struct AccountApp {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<AccountScope>,
    pub granted_at: String,
    pub granted_at_iso: String,
    pub updated_at: String,
    pub updated_at_iso: String,
}

/// The consent center: the apps a user allowed, and their consent records.
#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub csrf: String,
    pub apps: Vec<AccountApp>,
    /// A confirmation after a withdrawal.
    pub notice: Option<String>,
    /// Opened through an account link (no login): until when, readable. The downloads, which
    /// need a login, are not offered then.
    pub link_until: Option<String>,
}

/// The page an account link opens: a button that spends the link (a GET never does, so a mail
/// scanner fetching the link does not use it up).
#[derive(Template)]
#[template(path = "account_link.html")]
pub struct AccountLinkPage {
    pub token: String,
    pub csrf: String,
}

pub struct ChooserOption {
    pub url: String,
    pub name: String,
}

#[derive(Template)]
#[template(path = "chooser.html")]
pub struct ChooserPage {
    pub app_name: String,
    pub options: Vec<ChooserOption>,
}

#[derive(Template)]
#[template(path = "dev_login.html")]
pub struct DevLoginPage {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: String,
    pub nonce: String,
    pub code_challenge: String,
    pub scope: String,
}

#[derive(Template)]
#[template(path = "demo.html")]
pub struct DemoPage {
    pub error: Option<String>,
    pub id_token: String,
    pub access_token: String,
    pub userinfo: String,
}

#[derive(Template)]
#[template(path = "logout_confirm.html")]
pub struct LogoutConfirmPage {
    pub csrf: String,
    pub client_id: String,
    pub post_logout_redirect_uri: String,
    pub state: String,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage {}

pub const STYLESHEET: &str = include_str!("../../templates/herald.css");
