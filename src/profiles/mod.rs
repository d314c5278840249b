//! Profiles: what an upstream says about a user, as Herald keeps it on the user record, and
//! profiles imported from outside a login (BlueConic's import goals, in Herald's terms).
//!
//! An import line is one user's upstream-shaped claims: `{"id_token": {…}, "userinfo": {…}}`,
//! or one flat object read as both, with the subject in `sub` (or Auth0's `user_id`). It goes
//! through that upstream's attributes and mappings with their merge strategies against the
//! user's stored context, exactly as a login would; the user is found by identity, then (when
//! the upstream links by verified email) by verified email, and created only when allowed. The
//! stored context is what the user's next login merges with and what the admin pages show;
//! live logins keep their claims until they are refreshed.
//!
//! [`management_api`] reads Auth0's users page by page for the same path.

pub mod management_api;

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::claims::{self, AccessTokenClaims, AuthContext, UpstreamClaims};
use crate::config::{Settings, Upstream};
use crate::store::{
    CreateOutcome, LinkOutcome, LinkedIdentity, NewUser, Store, StoreError, User, UserProfile,
};
use crate::tokens::hashing::random_token;

/// How an import treats users it does not find.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Create a user for a line that matches nobody (otherwise the line fails).
    pub allow_create: bool,
    /// Compute and report, store nothing.
    pub dry_run: bool,
}

/// What happened to one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineOutcome {
    Created {
        sub: String,
    },
    /// `changed`: the context's top-level names whose values changed.
    Updated {
        sub: String,
        changed: Vec<String>,
    },
    Unchanged {
        sub: String,
    },
    Failed(String),
}

/// What an import did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub failed: usize,
    /// Nothing was stored.
    pub dry_run: bool,
    /// Each line that failed (1-based) and why; at most [`MAX_LISTED`].
    pub failures: Vec<LineFailure>,
    /// Each line that created or changed a user; at most [`MAX_LISTED`].
    pub changes: Vec<LineChange>,
}

/// How many failures and changes a report lists (its counts cover every line).
pub const MAX_LISTED: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LineFailure {
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LineChange {
    pub line: usize,
    pub sub: String,
    pub created: bool,
    /// The context's top-level names whose values changed.
    pub changed: Vec<String>,
}

impl ImportReport {
    /// Counts line `line`'s outcome.
    pub fn record(&mut self, line: usize, outcome: LineOutcome) {
        match outcome {
            LineOutcome::Created { sub } => {
                self.created += 1;
                self.list_change(line, sub, true, Vec::new());
            }
            LineOutcome::Updated { sub, changed } => {
                self.updated += 1;
                self.list_change(line, sub, false, changed);
            }
            LineOutcome::Unchanged { .. } => self.unchanged += 1,
            LineOutcome::Failed(reason) => {
                self.failed += 1;
                if self.failures.len() < MAX_LISTED {
                    self.failures.push(LineFailure { line, reason });
                }
            }
        }
    }

    fn list_change(&mut self, line: usize, sub: String, created: bool, changed: Vec<String>) {
        if self.changes.len() < MAX_LISTED {
            self.changes.push(LineChange {
                line,
                sub,
                created,
                changed,
            });
        }
    }

    /// One line for people: the counts.
    pub fn summary(&self) -> String {
        format!(
            "{} created, {} updated, {} unchanged, {} failed{}",
            self.created,
            self.updated,
            self.unchanged,
            self.failed,
            if self.dry_run {
                " (dry run: nothing stored)"
            } else {
                ""
            }
        )
    }
}

/// Upstream-shaped claims from an import line.
pub fn claims_of(line: &Map<String, Value>) -> Result<UpstreamClaims, String> {
    let object = |name: &str| match line.get(name) {
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        None => Ok(None),
        Some(_) => Err(format!("`{name}` must be an object")),
    };
    let (mut id_token, userinfo) = match (object("id_token")?, object("userinfo")?) {
        (None, None) => (line.clone(), Some(line.clone())),
        (id, info) => (id.unwrap_or_default(), info),
    };
    // Auth0's user objects name the subject `user_id`.
    if !id_token.contains_key("sub") {
        let sub = userinfo
            .as_ref()
            .and_then(|u| u.get("sub"))
            .or_else(|| id_token.get("user_id"))
            .cloned();
        if let Some(sub) = sub {
            id_token.insert("sub".into(), sub);
        }
    }
    match id_token.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => return Err("no subject: give `sub` (or Auth0's `user_id`)".into()),
    }
    Ok(UpstreamClaims {
        id_token,
        userinfo,
        access_token: AccessTokenClaims::Absent,
    })
}

/// Imports one line's claims for `upstream`.
pub async fn import_line(
    store: &dyn Store,
    settings: &Settings,
    upstream: &Upstream,
    line: &Value,
    opts: ImportOptions,
    now: i64,
) -> Result<LineOutcome, StoreError> {
    let Value::Object(line) = line else {
        return Ok(LineOutcome::Failed("not a JSON object".into()));
    };
    let claims = match claims_of(line) {
        Ok(c) => c,
        Err(why) => return Ok(LineOutcome::Failed(why)),
    };
    let subject = claims.id_token["sub"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let profile = profile_of(&claims, email_of(&claims), None);
    let (user, link) = match store.user_by_identity(&upstream.id, &subject).await? {
        Some(user) => (Some(user), false),
        None => match linked_by_email(store, settings, upstream, &profile).await? {
            Some(user) => (Some(user), true),
            None => (None, false),
        },
    };
    if user.is_none() && !opts.allow_create {
        return Ok(LineOutcome::Failed(format!(
            "no user has identity `{subject}` at upstream `{}`{}; allow creating users to \
             import it as a new one",
            upstream.id,
            if upstream.link_by_verified_email {
                " or its verified email"
            } else {
                ""
            }
        )));
    }
    let previous: Option<AuthContext> = user
        .as_ref()
        .and_then(|u| u.last_context.as_deref())
        .and_then(|c| serde_json::from_str(c).ok());
    let built =
        match claims::build_onto(&upstream.id, &upstream.mapping, &claims, previous.as_ref()) {
            Ok(b) => b,
            Err(e) => return Ok(LineOutcome::Failed(e.to_string())),
        };
    let context = serde_json::to_string(&built.context)
        .map_err(|e| StoreError::Other(format!("the imported context: {e}")))?;
    let Some(user) = user else {
        if opts.dry_run {
            return Ok(LineOutcome::Created {
                sub: "(new)".into(),
            });
        }
        let new = NewUser {
            sub: random_token(),
            profile,
            identity: Some((upstream.id.clone(), subject.clone())),
            now,
        };
        return match store.create_user(&new).await? {
            CreateOutcome::Created(user) => {
                store.set_last_context(&user.sub, &context).await?;
                Ok(LineOutcome::Created { sub: user.sub })
            }
            CreateOutcome::IdentityTaken(holder) => Ok(LineOutcome::Failed(format!(
                "identity `{subject}` was taken by user `{holder}` during the import"
            ))),
        };
    };
    let changed = changed_names(previous.as_ref(), &built.context);
    if !opts.dry_run {
        if link {
            match store
                .link_identity(&user.sub, &upstream.id, &subject, now)
                .await?
            {
                LinkOutcome::Linked | LinkOutcome::AlreadyLinked => {}
                other => {
                    return Ok(LineOutcome::Failed(format!(
                        "identity `{subject}` could not be linked: {other:?}"
                    )));
                }
            }
        }
        if !changed.is_empty() {
            store.set_last_context(&user.sub, &context).await?;
        }
    }
    Ok(if changed.is_empty() && !link {
        LineOutcome::Unchanged { sub: user.sub }
    } else {
        LineOutcome::Updated {
            sub: user.sub,
            changed,
        }
    })
}

/// The one user whose verified email is this profile's verified email, when `upstream` links
/// by verified email.
async fn linked_by_email(
    store: &dyn Store,
    settings: &Settings,
    upstream: &Upstream,
    profile: &UserProfile,
) -> Result<Option<User>, StoreError> {
    if !upstream.link_by_verified_email {
        return Ok(None);
    }
    let Some(user) = user_with_verified_email(store, profile).await? else {
        return Ok(None);
    };
    let identities = store.identities(&user.sub).await?;
    Ok(email_trusted(settings, &identities).then_some(user))
}

/// The one user whose email is `profile`'s verified email, verified on their record too; none
/// when nobody has it, or several do (logged: an admin links by hand).
pub async fn user_with_verified_email(
    store: &dyn Store,
    profile: &UserProfile,
) -> Result<Option<User>, StoreError> {
    let Some(email) = profile.email.as_deref().filter(|_| profile.email_verified) else {
        return Ok(None);
    };
    let mut found: Vec<User> = store
        .users_by_email(email)
        .await?
        .into_iter()
        .filter(|u| u.email_verified)
        .collect();
    if found.len() > 1 {
        tracing::warn!(
            users = found.len(),
            "several users have this verified email: it links to none of them"
        );
        return Ok(None);
    }
    Ok(found.pop())
}

/// Whether a user holding `identities` may be linked to by verified email: every identity is at
/// an upstream that links by verified email (so only upstreams trusted to verify emails ever
/// wrote it; one trusted less cannot plant a victim's address on an attacker's account), or
/// there is none (created by an admin, who vouched for it).
pub fn email_trusted(settings: &Settings, identities: &[LinkedIdentity]) -> bool {
    identities.iter().all(|i| {
        settings
            .upstream(&i.upstream_id)
            .is_some_and(|u| u.link_by_verified_email)
    })
}

/// The names of the attributes (and `amr`, `acr`) whose values differ.
pub fn changed_names(before: Option<&AuthContext>, after: &AuthContext) -> Vec<String> {
    let empty = Map::new();
    let old = before.map_or(&empty, |c| &c.attributes);
    let mut names: Vec<String> = after
        .attributes
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .chain(
            old.keys()
                .filter(|k| !after.attributes.contains_key(*k))
                .cloned(),
        )
        .collect();
    if before.map(|c| &c.amr) != Some(&after.amr) && after.amr.is_some() {
        names.push("amr".into());
    }
    if before.map(|c| &c.acr) != Some(&after.acr) && after.acr.is_some() {
        names.push("acr".into());
    }
    names.sort();
    names.dedup();
    names
}

/// The profile the upstream gave: userinfo's values over the ID token's.
pub fn profile_of(claims: &UpstreamClaims, email: Option<&str>, ip: Option<String>) -> UserProfile {
    let text = |name: &str| {
        [claims.userinfo.as_ref(), Some(&claims.id_token)]
            .into_iter()
            .flatten()
            .find_map(|m| m.get(name).and_then(Value::as_str))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let verified = [claims.userinfo.as_ref(), Some(&claims.id_token)]
        .into_iter()
        .flatten()
        .find_map(|m| match m.get("email_verified") {
            Some(Value::Bool(b)) => Some(*b),
            // Some providers send it as a string.
            Some(Value::String(s)) => Some(s == "true"),
            _ => None,
        })
        .unwrap_or(false);
    UserProfile {
        email: email.map(str::to_string),
        email_verified: email.is_some() && verified,
        name: text("name"),
        picture: text("picture"),
        ip,
    }
}

/// The user's email as the upstream gave it: userinfo's, else the ID token's.
pub fn email_of(claims: &UpstreamClaims) -> Option<&str> {
    fn from(m: &serde_json::Map<String, Value>) -> Option<&str> {
        m.get("email").and_then(Value::as_str)
    }
    claims
        .userinfo
        .as_ref()
        .and_then(from)
        .or_else(|| from(&claims.id_token))
        .filter(|e| !e.is_empty())
}
