//! The error a page handler returns: what the person must see (status, title, message, a link
//! back, and `Retry-After` when Herald cannot serve anyone for a moment), rendered as the error
//! page of [`error_page`].
//!
//! Page handlers return `Result<Response, PageError>` and use `?`. A [`StoreError`] or a failed
//! browser session converts by itself: the cause goes to the log, never to the page. Where a
//! store failure deserves its own words (what could not be done, where to go back), say them
//! with [`PageError::store`] in a `map_err`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::render::{ReturnLink, error_page};
use crate::store::StoreError;

/// What a store failure shows when the place it happened has nothing more precise to say.
const STORE_FAILURE_MESSAGE: &str = "Herald could not complete this request. Please try again.";

/// A page that tells the person what went wrong and what to do next.
#[must_use]
pub struct PageError {
    status: StatusCode,
    title: String,
    message: String,
    back: Option<ReturnLink>,
    /// Seconds to wait before retrying, sent as `Retry-After`.
    retry_after: Option<&'static str>,
}

impl PageError {
    /// An error page with `status`, a `title` and a `message` saying what to do next.
    pub fn new(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> Self {
        PageError {
            status,
            title: title.into(),
            message: message.into(),
            back: None,
            retry_after: None,
        }
    }

    /// The page with a link back (to the app, with an OAuth error, or to one of Herald's pages).
    pub fn with_back(self, back: ReturnLink) -> Self {
        PageError {
            back: Some(back),
            ..self
        }
    }

    /// The app's link with the OAuth error this page would offer, as a redirect; the page
    /// itself when it has none (the client or its redirect URI are in doubt).
    pub fn into_redirect(self) -> Result<axum::response::Response, Self> {
        match &self.back {
            Some(back) => Ok(axum::response::IntoResponse::into_response(
                axum::response::Redirect::to(&back.url),
            )),
            None => Err(self),
        }
    }

    /// The database cannot be reached: 503, try again in a few seconds.
    pub fn unavailable() -> Self {
        PageError {
            retry_after: Some("5"),
            ..PageError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Herald cannot reach its database right now. Nothing was lost; please try again \
                 in a few seconds.",
            )
        }
    }

    /// A failed store call: [`unavailable`](Self::unavailable) when the database cannot be
    /// reached, else a 500 with `message` (what could not be done, and that nothing was
    /// changed) and the link `back`. `place` names where it happened, for the log only.
    pub fn store(e: StoreError, place: &str, message: &str, back: Option<ReturnLink>) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "database unavailable {place}");
                PageError::unavailable()
            }
            other => {
                tracing::error!(error = %other, "store error {place}");
                PageError {
                    back,
                    ..PageError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Something went wrong",
                        message,
                    )
                }
            }
        }
    }

    /// The status the page is sent with.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError::store(e, "on a page", STORE_FAILURE_MESSAGE, None)
    }
}

/// The session store (Herald's own store underneath) failed: the page cannot go on.
impl From<tower_sessions::session::Error> for PageError {
    fn from(e: tower_sessions::session::Error) -> Self {
        tracing::warn!(error = %e, "session store failed");
        PageError::unavailable()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut res = error_page(self.status, &self.title, &self.message, self.back);
        if let Some(seconds) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
        }
        res
    }
}

/// [`PageError::unavailable`] as a response, for handlers not returning a [`PageError`].
pub fn unavailable_page() -> Response {
    PageError::unavailable().into_response()
}

/// [`PageError::store`] as a response, for handlers not returning a [`PageError`].
pub fn store_failure_page(
    e: StoreError,
    place: &str,
    message: &str,
    back: Option<ReturnLink>,
) -> Response {
    PageError::store(e, place, message, back).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(res: Response) -> String {
        let bytes = axum::body::to_bytes(res.into_body(), 64 * 1024)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn an_unreachable_database_gives_503_with_retry_after() {
        let res = PageError::from(StoreError::Unavailable("pool timed out".into())).into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "5");
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
        let html = body(res).await;
        assert!(html.contains("Temporarily unavailable"), "{html}");
        assert!(!html.contains("pool timed out"), "{html}");
    }

    #[tokio::test]
    async fn any_other_store_error_gives_500_without_its_cause() {
        let internal = "relation \"grants\" does not exist";
        let res = PageError::from(StoreError::Other(internal.into())).into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(res.headers().get(header::RETRY_AFTER).is_none());
        let html = body(res).await;
        assert!(html.contains("Something went wrong"), "{html}");
        assert!(
            html.contains("Herald could not complete this request."),
            "{html}"
        );
        assert!(!html.contains("grants"), "{html}");
        assert!(!html.contains("does not exist"), "{html}");
    }

    #[tokio::test]
    async fn a_store_failure_shows_the_message_and_link_of_its_place() {
        let back = ReturnLink {
            url: "/account".into(),
            app_name: "your consent center".into(),
        };
        let e = StoreError::Corrupt("bad json at row 7".into());
        let res = PageError::store(
            e,
            "in the consent center",
            "Herald could not load or change your consents.",
            Some(back),
        )
        .into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let html = body(res).await;
        assert!(
            html.contains("Herald could not load or change your consents."),
            "{html}"
        );
        assert!(html.contains("Return to your consent center"), "{html}");
        assert!(!html.contains("row 7"), "{html}");
        assert!(!html.contains(STORE_FAILURE_MESSAGE), "{html}");
    }

    #[tokio::test]
    async fn an_unreachable_database_shows_no_link_even_where_a_store_failure_would() {
        let back = ReturnLink {
            url: "/account".into(),
            app_name: "your consent center".into(),
        };
        let e = StoreError::Unavailable("connection refused".into());
        let res = PageError::store(e, "here", "Could not do it.", Some(back)).into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "5");
        let html = body(res).await;
        assert!(!html.contains("Could not do it."), "{html}");
        assert!(!html.contains("Return to your consent center"), "{html}");
    }

    #[tokio::test]
    async fn a_page_error_renders_the_same_page_as_error_page() {
        let link = || ReturnLink {
            url: "https://app.example/cb?error=access_denied".into(),
            app_name: "Example".into(),
        };
        let ours = PageError::new(StatusCode::FORBIDDEN, "Request refused", "No.")
            .with_back(link())
            .into_response();
        let theirs = error_page(
            StatusCode::FORBIDDEN,
            "Request refused",
            "No.",
            Some(link()),
        );
        assert_eq!(ours.status(), theirs.status());
        assert_eq!(ours.headers(), theirs.headers());
        assert_eq!(body(ours).await, body(theirs).await);
    }
}
