//! One askama struct per admin page; the templates are in `templates/admin/` and extend
//! `admin/layout.html`. askama escapes every value.

use askama::Template;

use super::base::AdminUser;
use crate::config::{Client, ClientAuth, Permission};

/// The navigation bar: who is signed in and which section is open.
pub struct Nav {
    pub admin_name: String,
    pub current: &'static str,
    /// The signed-in admin's roles, shown beside their name.
    pub role: String,
    /// Whether their role may change the configuration (the forms' buttons show only then).
    pub can_edit: bool,
    /// Whether their role may see users (the Users link shows only then).
    pub can_see_users: bool,
    pub logout_url: String,
}

impl Nav {
    pub fn new(admin: &AdminUser, current: &'static str) -> Self {
        Self {
            admin_name: admin.name.clone(),
            current,
            role: admin.roles.names(),
            can_edit: admin.roles.may(Permission::EditConfig),
            can_see_users: admin.roles.may(Permission::ReadUsers),
            logout_url: admin.logout_url.clone(),
        }
    }

    /// `aria-current` for the link to `section`.
    pub fn here(&self, section: &str) -> &'static str {
        if self.current == section {
            "page"
        } else {
            "false"
        }
    }
}

/// One choice of a `<select>`.
pub struct Opt {
    pub value: &'static str,
    pub selected: bool,
}

/// How a setting's value is written in the configuration (its serde name), e.g. `set_if_empty`.
pub fn word<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn options(all: &[&'static str], chosen: &str) -> Vec<Opt> {
    all.iter()
        .map(|v| Opt {
            value: v,
            selected: *v == chosen,
        })
        .collect()
}

pub struct UpstreamRow {
    pub id: String,
    pub display_name: String,
    pub issuer: String,
    pub attributes: usize,
    pub mappings: usize,
}

pub struct ClientRow {
    pub client_id: String,
    pub client_name: String,
    pub kind: &'static str,
    pub trusted: bool,
    pub grant_types: String,
    pub scopes: String,
}

impl ClientRow {
    pub fn of(c: &Client) -> Self {
        Self {
            client_id: c.client_id.clone(),
            client_name: c.client_name.clone(),
            kind: match c.auth {
                ClientAuth::None => "public",
                ClientAuth::Secret(_) => "confidential (secret)",
                ClientAuth::PrivateKeyJwt(_) => "confidential (private_key_jwt)",
            },
            trusted: c.trusted,
            grant_types: c
                .grant_types
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            scopes: c.scopes.join(" "),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/overview.html")]
pub struct OverviewPage {
    pub nav: Nav,
    pub version: i64,
    pub upstreams: Vec<UpstreamRow>,
    pub clients: Vec<ClientRow>,
}

/// One attribute row of the upstream editor, as shown or as submitted.
pub struct AttrRow {
    pub claim: String,
    pub sources: Vec<Opt>,
    pub types: Vec<Opt>,
    pub display_name: String,
    pub required: bool,
    pub on_missing: Vec<Opt>,
    pub errors: Vec<String>,
}

/// One mapping row of the upstream editor.
pub struct MapRow {
    pub from: String,
    /// A CEL expression computing the value instead of `from`.
    pub expr: String,
    /// A CEL condition; the mapping applies only when it is true.
    pub when: String,
    pub to: String,
    pub merges: Vec<Opt>,
    /// The transforms, described (edited in the configuration or the admin API).
    pub steps: Vec<String>,
    /// The keys the page does not edit, as JSON, sent back as they are.
    pub kept: String,
    pub errors: Vec<String>,
}

/// The result of a preview, as pretty JSON.
pub struct PreviewView {
    pub context: String,
    pub id_token: String,
    pub userinfo: String,
    pub access_token: String,
    pub warnings: Vec<String>,
    /// Each condition, expression and transform with its input and output, as compact JSON.
    pub steps: Vec<StepView>,
    pub error: Option<String>,
}

/// One row of a preview's steps.
pub struct StepView {
    pub mapping: String,
    pub step: String,
    pub input: String,
    pub output: String,
}

#[derive(Template)]
#[template(path = "admin/upstream.html")]
pub struct UpstreamPage {
    pub nav: Nav,
    pub csrf: String,
    /// The configuration version the rows were read from (a save from an older one is stopped).
    pub version: i64,
    pub id: String,
    pub display_name: String,
    pub kind: String,
    pub issuer: String,
    pub userinfo: bool,
    pub attributes: Vec<AttrRow>,
    pub mappings: Vec<MapRow>,
    /// Problems not tied to one row.
    pub errors: Vec<String>,
    pub notice: Option<String>,
    pub sample_id_token: String,
    pub sample_userinfo: String,
    pub sample_access_token: String,
    pub scopes: String,
    pub preview: Option<PreviewView>,
    /// The address to register at the upstream as Herald's redirect URI.
    pub callback_url: String,
    /// What "Test connection" found, right after it was pressed.
    pub check: Option<CheckView>,
    /// The settings card: the upstream's own settings, or what was typed into it.
    pub settings: UpstreamForm,
    /// Why the settings card was not saved.
    pub settings_errors: Vec<String>,
    pub secret_prefix: &'static str,
}

/// The steps of a connection test (discovery, JWKS, client credentials) and what each found.
pub struct CheckView {
    pub ok: bool,
    pub steps: Vec<crate::upstream::CheckStep>,
}

/// One signing key, as the keys page lists it.
pub struct KeyRow {
    pub kid: String,
    pub alg: &'static str,
    pub status: &'static str,
    pub published: String,
    pub signs_from: String,
    /// Empty while it signs with no successor.
    pub stops: String,
    pub leaves: String,
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
pub struct KeysPage {
    pub nav: Nav,
    pub csrf: String,
    pub keys: Vec<KeyRow>,
    pub algs: Vec<Opt>,
    /// Admins rotate; the others see the keys only.
    pub can_rotate: bool,
    pub default_delay_minutes: i64,
    pub notice: Option<String>,
}

/// One upstream in the list.
pub struct UpstreamListRow {
    pub id: String,
    pub display_name: String,
    pub kind: String,
    pub issuer: String,
    pub callback_url: String,
}

/// An upstream's settings form (new on the list page, or one upstream's on its page), as
/// shown or as submitted. It never holds the secret.
#[derive(Default)]
pub struct UpstreamForm {
    pub id: String,
    pub display_name: String,
    pub kinds: Vec<Opt>,
    pub domain: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret_env: String,
    pub scopes: String,
    pub userinfo: bool,
    pub logout: bool,
    pub link_by_verified_email: bool,
    /// `allow_signup = false`: only users that exist already may log in.
    pub existing_only: bool,
    /// This server has a key-encryption key, so a typed secret can be stored.
    pub can_store_secret: bool,
    /// Where the current secret comes from, in words (empty for a new upstream).
    pub secret_source: String,
    /// The kind can change (not for the development upstream).
    pub editable_kind: bool,
}

#[derive(Template)]
#[template(path = "admin/upstreams.html")]
pub struct UpstreamsPage {
    pub nav: Nav,
    pub csrf: String,
    pub upstreams: Vec<UpstreamListRow>,
    pub form: UpstreamForm,
    pub errors: Vec<String>,
    /// The issuer, for the callback URL the form explains before the id is chosen.
    pub issuer: String,
    pub secret_prefix: &'static str,
}

/// The client form's fields, as shown or as submitted.
#[derive(Default)]
pub struct ClientForm {
    pub client_id: String,
    pub client_name: String,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub backchannel_logout_uri: String,
    pub scopes: String,
    pub trusted: bool,
    pub public: bool,
    pub authorization_code: bool,
    pub refresh_token: bool,
    pub client_credentials: bool,
    pub token_exchange: bool,
    pub algs: Vec<Opt>,
    pub refresh_token_idle_ttl: String,
    pub refresh_token_absolute_ttl: String,
    pub refresh_token_grace_period: String,
    pub logo_uri: String,
    pub client_uri: String,
    pub policy_uri: String,
    pub tos_uri: String,
    pub access_policy: String,
    pub require_par: bool,
    pub require_dpop: bool,
}

#[derive(Template)]
#[template(path = "admin/clients.html")]
pub struct ClientsPage {
    pub nav: Nav,
    pub csrf: String,
    pub clients: Vec<ClientRow>,
    pub form: ClientForm,
    pub errors: Vec<String>,
    /// A client just registered, with its secret shown this once.
    pub created: Option<CreatedView>,
}

pub struct CreatedView {
    pub client_id: String,
    pub secret: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/client.html")]
pub struct ClientPage {
    pub nav: Nav,
    pub csrf: String,
    /// The configuration version the form was read from.
    pub version: i64,
    pub kind: &'static str,
    pub form: ClientForm,
    pub errors: Vec<String>,
    pub notice: Option<String>,
    /// The secret section: present for a client that authenticates with a secret.
    pub secret: Option<SecretView>,
}

/// A confidential client's secret as its page shows it: never the secret itself, except the
/// new one right after a rotation.
pub struct SecretView {
    /// The secret a rotation just made, shown this once.
    pub new_secret: Option<String>,
    /// When the replaced secret stops working (UTC), while it still works.
    pub previous_until: Option<String>,
}

pub struct LineageView {
    pub claim: String,
    pub scope: String,
    pub tokens: String,
    pub upstream: String,
    pub source: String,
    pub upstream_claim: String,
    pub mapping: String,
    pub merge: String,
    pub note: String,
}

#[derive(Template)]
#[template(path = "admin/lineage.html")]
pub struct LineagePage {
    pub nav: Nav,
    pub rows: Vec<LineageView>,
    /// The declared authentication context (`[[context]]`).
    pub context: Vec<ContextView>,
}

/// One declared context attribute and the mappings that write it.
pub struct ContextView {
    pub path: String,
    pub ty: String,
    pub description: String,
    /// `upstream: from → to`, for each mapping whose target is this path or inside it.
    pub written_by: Vec<String>,
}

pub struct UserRow {
    pub sub: String,
    pub upstream_id: String,
    pub upstream_subject: String,
    pub created_at: String,
    pub last_login_at: String,
    /// Empty when the last login carried none.
    pub email: String,
    pub email_verified: bool,
    pub name: String,
    pub last_ip: String,
    pub logins_count: i64,
    pub blocked: bool,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
pub struct UsersPage {
    pub nav: Nav,
    pub notice: Option<String>,
    pub q: String,
    pub upstream: String,
    pub users: Vec<UserRow>,
    pub total: i64,
    pub first: i64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

pub struct GrantView {
    pub client_id: String,
    pub app_name: String,
    pub scopes: String,
    pub granted_at: String,
    pub updated_at: String,
}

pub struct RecordView {
    pub client_id: String,
    pub allowed: String,
    pub denied: String,
    pub method: String,
    pub decided_at: String,
}

#[derive(Template)]
#[template(path = "admin/user.html")]
pub struct UserPage {
    pub nav: Nav,
    pub csrf: String,
    /// Admins withdraw grants and erase users here; the others read.
    pub can_act: bool,
    pub notice: Option<String>,
    pub user: UserRow,
    /// Every upstream identity linked to the user, oldest first.
    pub identities: Vec<IdentityRow>,
    pub context: String,
    /// Where each value of the context came from.
    pub origins: Vec<OriginRow>,
    pub grants: Vec<GrantView>,
    pub records: Vec<RecordView>,
    /// The user's latest login events.
    pub logins: Vec<LoginEventRow>,
}

/// An upstream identity of a user, on their page.
pub struct IdentityRow {
    pub upstream: String,
    pub upstream_name: String,
    pub subject: String,
    pub linked_at: String,
}

/// A context path and the upstream claims its value came from.
pub struct OriginRow {
    pub path: String,
    pub from: String,
}

/// One login event on the pages.
pub struct LoginEventRow {
    pub at: String,
    pub result: &'static str,
    pub sub: String,
    /// Who `sub` is, in words (email or name), when Herald knows.
    pub user_name: String,
    pub upstream: String,
    pub client_id: String,
    pub app_name: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "admin/logins.html")]
pub struct LoginsPage {
    pub nav: Nav,
    pub events: Vec<LoginEventRow>,
    pub results: Vec<Opt>,
    pub sub: String,
    pub upstream: String,
    pub client_id: String,
    /// The next (older) page, with the same filters.
    pub older: Option<String>,
    /// What was wrong with the filters.
    pub error: Option<String>,
}

pub struct AuditView {
    pub id: i64,
    pub at: String,
    pub actor: String,
    /// Who `actor` is, in words (a client's name, a user's name), when Herald knows.
    pub actor_name: String,
    pub action: String,
    pub target: String,
    pub target_name: String,
    pub before: String,
    pub after: String,
    pub version: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
pub struct AuditPage {
    pub nav: Nav,
    pub actor: String,
    pub target: String,
    pub entries: Vec<AuditView>,
    pub older: Option<String>,
}

/// A choice whose values are not known at compile time (a purpose's name).
pub struct NamedOpt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// One scope in the list.
pub struct ScopeRow {
    pub name: String,
    pub description: String,
    /// The languages it has its own words in, besides English.
    pub languages: String,
    pub claims: String,
    pub optional: bool,
    pub purpose: String,
    /// `built-in`, `built-in, redefined` or `custom`.
    pub origin: &'static str,
}

/// A scope's description in one language; `placeholder` is what that language shows when the
/// field is left empty.
pub struct LocaleField {
    pub locale: String,
    /// `German (de)`.
    pub label: String,
    pub value: String,
    pub placeholder: String,
}

/// A scope's form, as shown or as submitted.
pub struct ScopeForm {
    pub name: String,
    pub description: String,
    pub translations: Vec<LocaleField>,
    /// One claim per line, `claim` or `claim -> token token`.
    pub claims: String,
    pub optional: bool,
    pub purposes: Vec<NamedOpt>,
}

#[derive(Template)]
#[template(path = "admin/scopes.html")]
pub struct ScopesPage {
    pub nav: Nav,
    pub csrf: String,
    pub scopes: Vec<ScopeRow>,
    /// The new scope's form.
    pub form: ScopeForm,
    pub errors: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/scope.html")]
pub struct ScopePage {
    pub nav: Nav,
    pub csrf: String,
    /// The configuration version the form was read at (a save from an older one is stopped).
    pub version: i64,
    pub name: String,
    pub origin: &'static str,
    /// The clients that may ask for it.
    pub clients: Vec<String>,
    pub form: ScopeForm,
    pub errors: Vec<String>,
    pub notice: Option<String>,
}
