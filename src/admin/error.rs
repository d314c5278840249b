//! Errors of the admin API as JSON data, `{error, error_description}`, and the extractors whose
//! rejections become such errors instead of axum's plain-text defaults.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use crate::config::ConfigError;
use crate::store::StoreError;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A short code: `invalid_token`, `insufficient_scope`, `invalid_request`,
    /// `invalid_configuration`, `not_found`, `conflict`, `temporarily_unavailable`, `server_error`.
    pub error: String,
    /// What went wrong and how to fix it, for people.
    pub error_description: String,
    /// For `invalid_configuration`: each problem, named by its configuration key, exactly as
    /// `herald check-config` prints it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    challenge: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, error: &str, description: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: error.into(),
                error_description: description.into(),
                problems: Vec::new(),
            },
            challenge: None,
        }
    }

    /// No credentials at all (RFC 6750 §3.1: the challenge carries no error code).
    pub fn no_credentials() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the admin API needs `Authorization: Bearer` with HERALD_ADMIN_TOKEN or a \
             client_credentials access token with a role scope (herald:admin, herald:edit or \
             herald:read)",
        );
        e.challenge = Some("Bearer realm=\"herald-admin\"".into());
        e
    }

    /// Credentials that are malformed, unknown, expired or revoked.
    pub fn invalid_token(description: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "invalid_token", description);
        e.challenge = Some("Bearer realm=\"herald-admin\", error=\"invalid_token\"".into());
        e
    }

    /// 403 `insufficient_scope`, naming in the challenge the scope (or scopes, space-separated)
    /// that would have been enough.
    pub fn insufficient_scope_for(description: impl Into<String>, scopes: &str) -> Self {
        let mut e = Self::new(StatusCode::FORBIDDEN, "insufficient_scope", description);
        e.challenge = Some(format!(
            "Bearer realm=\"herald-admin\", error=\"insufficient_scope\", scope=\"{scopes}\""
        ));
        e
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", description)
    }

    /// 503: something Herald depends on could not be reached; nothing was changed.
    pub fn unavailable(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            description,
        )
    }

    pub fn conflict(description: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", description)
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "admin API failure");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Herald failed to complete the request; see its log",
        )
    }
}

impl From<ConfigError> for ApiError {
    fn from(e: ConfigError) -> Self {
        let mut err = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_configuration",
            e.problems.join("\n"),
        );
        err.body.problems = e.problems;
        err
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "admin API: database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the database is unavailable; retry shortly",
                )
            }
            StoreError::Conflict(_) => Self::conflict(
                "another change was made at the same time; read the current state and retry",
            ),
            other => Self::internal(other),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        Self::invalid_request(r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::invalid_request(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::invalid_request(r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(self.body)).into_response();
        if let Some(c) = self.challenge
            && let Ok(v) = HeaderValue::from_str(&c)
        {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // As the pages and /token do: when to try again.
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        res
    }
}

/// A JSON body; a malformed one is `invalid_request`.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Body<T>(pub T);

/// Query parameters; malformed ones are `invalid_request`.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        refuse_nul(parts.uri.query().unwrap_or_default())?;
        let axum::extract::Query(v) =
            axum::extract::Query::from_request_parts(parts, state).await?;
        Ok(Query(v))
    }
}

/// Path parameters; malformed ones are `invalid_request`.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        refuse_nul(parts.uri.path())?;
        let axum::extract::Path(v) = axum::extract::Path::from_request_parts(parts, state).await?;
        Ok(Path(v))
    }
}

/// Whether a raw path or query holds a NUL character (`%00`, its only spelling in a URI); the
/// admin API and the admin pages refuse such requests.
pub fn has_nul(raw: &str) -> bool {
    raw.contains("%00")
}

/// Refuses a NUL character (`%00`, its only spelling in a URI) in a path or query. Nothing Herald
/// stores can contain one, and PostgreSQL refuses it in any text parameter, so without this a
/// lookup like `GET /users/%00` would fail in the database instead of being a bad request.
fn refuse_nul(raw: &str) -> Result<(), ApiError> {
    if has_nul(raw) {
        return Err(ApiError::invalid_request(
            "the URL contains a NUL character (%00), which no identifier or filter may contain",
        ));
    }
    Ok(())
}
