//! OAuth 2.0 as plain data, shared by every side that speaks it: request parameters as OAuth
//! reads them ([`params`]), and errors with the redirects that carry authorization responses
//! back to clients ([`error`]). The provider endpoints, the login journey, the development
//! upstream and the demo app all stand on it; it imports none of them.

pub mod error;
pub mod params;

pub use error::{OAuthError, error_url, redirect_error, sanitize, with_params};
pub use params::{Params, is_form};
