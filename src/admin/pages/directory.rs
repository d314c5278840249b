//! Read-only admin pages: where each token claim comes from (lineage), the users Herald has
//! seen with their grants and consent records, and the audit log.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::base::{AdminUser, store_failed};
use super::views::{
    AuditPage, AuditView, ContextView, GrantView, IdentityRow, LineagePage, LineageView, Nav,
    OriginRow, RecordView, UserPage, UserRow, UsersPage, word,
};
use crate::claims::AuthContext;
use crate::clock::readable_utc;
use crate::config::Permission;
use crate::state::AppState;
use crate::store::{AuditFilter, LoginEventQuery, User, UserQuery};
use crate::web::{error_page, render};

const USERS_PER_PAGE: i64 = 50;
const AUDIT_PER_PAGE: i64 = 50;

pub async fn lineage(State(state): State<AppState>, admin: AdminUser) -> Response {
    let settings = state.settings();
    let rows = settings
        .lineage()
        .into_iter()
        .map(|r| {
            let tokens = r.tokens.iter().map(word).collect::<Vec<_>>().join(", ");
            let (upstream, source, upstream_claim, mapping, merge) = match r.origin {
                Some(o) => (
                    o.upstream,
                    o.source.as_str().to_string(),
                    o.upstream_claim,
                    o.mapping,
                    o.merge.as_str().to_string(),
                ),
                None => Default::default(),
            };
            LineageView {
                claim: r.claim,
                scope: r.scope,
                tokens,
                upstream,
                source,
                upstream_claim,
                mapping,
                merge,
                note: r.note.unwrap_or_default(),
            }
        })
        .collect();
    let context = settings
        .context
        .iter()
        .map(|d| ContextView {
            path: d.path.canonical(),
            ty: d.ty.as_str().to_owned(),
            description: d.description.clone(),
            written_by: settings
                .upstreams
                .iter()
                .flat_map(|u| {
                    u.mapping
                        .mappings
                        .iter()
                        .filter(|m| m.to.starts_with(&d.path))
                        .map(|m| format!("{}: {}", u.id, m.describe()))
                })
                .collect(),
        })
        .collect();
    render(
        StatusCode::OK,
        &LineagePage {
            nav: Nav::new(&admin, "lineage"),
            rows,
            context,
        },
    )
}

fn user_row(u: &User) -> UserRow {
    UserRow {
        sub: u.sub.clone(),
        upstream_id: u
            .first_identity()
            .map(|(up, _)| up.into())
            .unwrap_or_default(),
        upstream_subject: u
            .first_identity()
            .map_or_else(|| "no identity yet".into(), |(_, subject)| subject.into()),
        created_at: readable_utc(u.created_at),
        last_login_at: readable_utc(u.last_login_at),
        email: u.email.clone().unwrap_or_default(),
        email_verified: u.email_verified,
        name: u.name.clone().unwrap_or_default(),
        last_ip: u.last_ip.clone().unwrap_or_default(),
        logins_count: u.logins_count,
        blocked: u.blocked,
    }
}

#[derive(Deserialize)]
pub struct UsersQuery {
    q: Option<String>,
    upstream: Option<String>,
    page: Option<i64>,
    erased: Option<String>,
}

pub async fn users(
    State(state): State<AppState>,
    admin: AdminUser,
    query: Result<Query<UsersQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(refusal) = admin.refuse_unless(Permission::ReadUsers) {
        return refusal;
    }
    let (q, upstream, page, erased) = match query.ok() {
        Some(Query(p)) => (
            p.q.unwrap_or_default().trim().to_string(),
            p.upstream.unwrap_or_default().trim().to_string(),
            p.page.unwrap_or(0).clamp(0, 1_000_000),
            p.erased,
        ),
        None => (String::new(), String::new(), 0, None),
    };
    let query = UserQuery {
        search: Some(q.clone()).filter(|q| !q.is_empty()),
        upstream_id: Some(upstream.clone()).filter(|u| !u.is_empty()),
        sort: Default::default(),
        offset: page * USERS_PER_PAGE,
        limit: USERS_PER_PAGE,
    };
    let (users, total) = match state.store.list_users(&query).await {
        Ok(r) => r,
        Err(e) => return store_failed(e),
    };
    let link = |page: i64| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        if !q.is_empty() {
            s.append_pair("q", &q);
        }
        if !upstream.is_empty() {
            s.append_pair("upstream", &upstream);
        }
        s.append_pair("page", &page.to_string());
        format!("/admin/users?{}", s.finish())
    };
    let shown = users.len() as i64;
    render(
        StatusCode::OK,
        &UsersPage {
            nav: Nav::new(&admin, "users"),
            notice: erased.map(|sub| {
                format!(
                    "User {sub} was erased: their profile, contexts, grants and sessions are \
                     gone, their tokens revoked, and user.deleted was sent to the webhooks."
                )
            }),
            prev: (page > 0).then(|| link(page - 1)),
            next: (query.offset + shown < total).then(|| link(page + 1)),
            first: if shown == 0 { 0 } else { query.offset + 1 },
            q,
            upstream,
            users: users.iter().map(user_row).collect(),
            total,
        },
    )
}

#[derive(Deserialize)]
pub struct UserPageQuery {
    withdrawn: Option<String>,
    blocked: Option<bool>,
    unlinked: Option<String>,
}

pub async fn user(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(sub): Path<String>,
    query: Result<Query<UserPageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(refusal) = admin.refuse_unless(Permission::ReadUsers) {
        return refusal;
    }
    let loaded = async {
        let user = state.store.user(&sub).await?;
        let grants = state.store.grants(&sub).await?;
        let records = state.store.consent_records(&sub).await?;
        let logins = state
            .store
            .login_events(&LoginEventQuery {
                sub: Some(sub.clone()),
                limit: 10,
                ..LoginEventQuery::default()
            })
            .await?;
        let identities = state.store.identities(&sub).await?;
        Ok::<_, crate::store::StoreError>((user, grants, records, logins, identities))
    }
    .await;
    let (user, grants, records, logins, identities) = match loaded {
        Ok((Some(u), g, r, l, i)) => (u, g, r, l, i),
        Ok((None, ..)) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "No such user",
                &format!("Herald has not seen a user “{sub}”."),
                None,
            );
        }
        Err(e) => return store_failed(e),
    };
    let settings = state.settings();
    let stored = user
        .last_context
        .as_deref()
        .and_then(|c| serde_json::from_str::<AuthContext>(c).ok());
    // Where each value came from: the upstream claim, its artefact and the mapping that wrote it.
    let origins = stored
        .as_ref()
        .map(|c| {
            c.origins
                .iter()
                .map(|(path, from)| OriginRow {
                    path: path.clone(),
                    from: from
                        .iter()
                        .map(|o| {
                            format!(
                                "{} {} of {} ({}{})",
                                o.source,
                                o.claim.as_str(),
                                o.upstream.as_str(),
                                o.mapping.as_str(),
                                if o.kept {
                                    ", kept from the login before"
                                } else {
                                    ""
                                }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                })
                .collect()
        })
        .unwrap_or_default();
    let context = stored
        .map(|c| serde_json::to_string_pretty(&Value::Object(c.attributes)).unwrap_or_default())
        .unwrap_or_default();
    render(
        StatusCode::OK,
        &UserPage {
            nav: Nav::new(&admin, "users"),
            csrf: admin.csrf.clone(),
            can_act: admin.roles.may(Permission::ManageUsers),
            notice: query
                .ok()
                .and_then(|q| {
                    match (q.0.withdrawn, q.0.blocked, q.0.unlinked) {
                (_, _, Some(subject)) => Some(format!(
                    "The identity {subject} was unlinked: its next login creates (or joins) a \
                     user as a first login does."
                )),
                (Some(client_id), _, _) => Some(format!(
                    "Consent for {} was withdrawn: its grant is gone, its tokens revoked, and a \
                     consent record (method admin) says so.",
                    settings.app_name(&client_id)
                )),
                (None, Some(true), None) => Some(
                    "The user is blocked: their next logins are refused, their codes and tokens \
                     are revoked and their browser sessions ended."
                        .into(),
                ),
                (None, Some(false), None) => Some("The user is no longer blocked.".into()),
                (None, None, None) => None,
            }
                }),
            logins: logins
                .into_iter()
                .map(|e| super::logins::row(&settings, e, Some(&user)))
                .collect(),
            user: user_row(&user),
            identities: identities
                .iter()
                .map(|i| IdentityRow {
                    upstream: i.upstream_id.clone(),
                    upstream_name: settings
                        .upstream(&i.upstream_id)
                        .map(|u| u.display_name.clone())
                        .unwrap_or_else(|| format!("{} (no longer configured)", i.upstream_id)),
                    subject: i.subject.clone(),
                    linked_at: readable_utc(i.linked_at),
                })
                .collect(),
            context,
            origins,
            grants: grants
                .into_iter()
                .map(|g| GrantView {
                    app_name: settings.app_name(&g.client_id),
                    client_id: g.client_id,
                    scopes: g.scopes.to_string(),
                    granted_at: readable_utc(g.granted_at),
                    updated_at: readable_utc(g.updated_at),
                })
                .collect(),
            records: records
                .into_iter()
                .rev()
                .map(|r| RecordView {
                    client_id: r.client_id,
                    allowed: r.allowed.to_string(),
                    denied: r.denied.to_string(),
                    method: r.method.to_string(),
                    decided_at: readable_utc(r.decided_at),
                })
                .collect(),
        },
    )
}

#[derive(Deserialize)]
pub struct AuditQuery {
    actor: Option<String>,
    target: Option<String>,
    before_id: Option<i64>,
}

pub async fn audit(
    State(state): State<AppState>,
    admin: AdminUser,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (actor, target, before_id) = match query.ok() {
        Some(Query(p)) => (
            p.actor.unwrap_or_default().trim().to_string(),
            p.target.unwrap_or_default().trim().to_string(),
            p.before_id,
        ),
        None => (String::new(), String::new(), None),
    };
    let filter = AuditFilter {
        actor: Some(actor.clone()).filter(|a| !a.is_empty()),
        target: Some(target.clone()).filter(|t| !t.is_empty()),
        since: None,
        before_id,
        limit: AUDIT_PER_PAGE,
    };
    let entries = match state.store.audit_entries(&filter).await {
        Ok(e) => e,
        Err(e) => return store_failed(e),
    };
    let older = (entries.len() as i64 == AUDIT_PER_PAGE)
        .then(|| entries.last().map(|e| e.id))
        .flatten()
        .map(|id| {
            let mut s = form_urlencoded::Serializer::new(String::new());
            if !actor.is_empty() {
                s.append_pair("actor", &actor);
            }
            if !target.is_empty() {
                s.append_pair("target", &target);
            }
            s.append_pair("before_id", &id.to_string());
            format!("/admin/audit?{}", s.finish())
        });
    let pretty = |s: Option<String>| {
        s.map(|s| {
            serde_json::from_str::<Value>(&s)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or(s)
        })
        .unwrap_or_default()
    };
    let mut names = Names::new(&state);
    let mut views = Vec::with_capacity(entries.len());
    for e in entries {
        let actor_name = names.of(&e.actor).await;
        let target_name = names.of(&e.target).await;
        views.push(AuditView {
            id: e.id,
            at: readable_utc(e.at),
            actor: e.actor,
            actor_name,
            action: e.action,
            target: e.target,
            target_name,
            before: pretty(e.before),
            after: pretty(e.after),
            version: e.config_version.map(|v| v.to_string()).unwrap_or_default(),
        });
    }
    render(
        StatusCode::OK,
        &AuditPage {
            nav: Nav::new(&admin, "audit"),
            actor,
            target,
            entries: views,
            older,
        },
    )
}

/// Names for the audit log's opaque labels: `client:ID` is the client's name, `user:SUB` the
/// user's name from their last login (else their upstream subject); each user read once.
struct Names<'a> {
    state: &'a AppState,
    users: std::collections::HashMap<String, String>,
}

impl<'a> Names<'a> {
    fn new(state: &'a AppState) -> Self {
        Self {
            state,
            users: Default::default(),
        }
    }

    async fn of(&mut self, label: &str) -> String {
        if let Some(id) = label.strip_prefix("client:") {
            let settings = self.state.settings();
            return settings
                .client(id)
                .map(|c| c.client_name.clone())
                .filter(|n| n != id)
                .unwrap_or_default();
        }
        let Some(sub) = label.strip_prefix("user:") else {
            return String::new();
        };
        if let Some(name) = self.users.get(sub) {
            return name.clone();
        }
        let name = match self.state.store.user(sub).await {
            Ok(Some(u)) => u
                .last_context
                .as_deref()
                .and_then(|c| serde_json::from_str::<AuthContext>(c).ok())
                .and_then(|c| c.display_name().map(str::to_string))
                .or(u.email)
                .unwrap_or(u.upstream_subject),
            _ => String::new(),
        };
        self.users.insert(sub.to_string(), name.clone());
        name
    }
}
