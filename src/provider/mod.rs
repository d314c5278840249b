//! Herald as an OpenID Provider: the endpoints client apps call.
//!
//! One file per endpoint: [`discovery`] (OpenID Discovery §3, RFC 8414), [`authorize`]
//! (RFC 6749 §4.1.1, OIDC Core §3.1.2), [`par`] (RFC 9126), [`token`] (RFC 6749 §3.2) with one
//! file per grant in [`grants`], [`revocation`] (RFC 7009), [`introspection`] (RFC 7662),
//! [`userinfo`] (OIDC Core §5.3), [`logout`] (RP-Initiated Logout 1.0). [`client_auth`],
//! [`dpop`] (RFC 9449) and [`resource`] (RFC 8707) are shared by the endpoints; the way from an
//! authorization request to its code is the journey in [`crate::login`], and OAuth errors and
//! parameters are in [`crate::oauth`].

pub mod authorize;
pub mod client_auth;
pub mod discovery;
pub mod dpop;
pub mod grants;
pub mod introspection;
pub mod logout;
pub mod par;
pub mod resource;
pub mod revocation;
pub mod token;
pub mod userinfo;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/jwks", get(discovery::jwks))
        .route(
            "/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route(
            "/token",
            axum::routing::post(token::token).get(token::wrong_method),
        )
        .route("/revoke", axum::routing::post(revocation::revoke))
        .route("/par", axum::routing::post(par::par))
        .route(
            "/introspect",
            axum::routing::post(introspection::introspect),
        )
        .route(
            "/userinfo",
            get(userinfo::userinfo_get).post(userinfo::userinfo_post),
        )
        .route("/logout", get(logout::logout_get).post(logout::logout_post))
        .route("/logout/done", get(logout::logout_done))
}
