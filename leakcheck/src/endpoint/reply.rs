//! [`Reply`]: a finished response (status, content type, body), and the
//! one way handlers build one off the runtime's workers.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A response, ready to send.
pub(crate) struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Reply {
    pub(crate) fn text(body: String) -> Reply {
        Reply::with(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            body.into_bytes(),
        )
    }

    pub(crate) fn json(body: String) -> Reply {
        Reply::with(StatusCode::OK, "application/json", body.into_bytes())
    }

    pub(crate) fn with(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type,
            body,
        }
    }

    /// A plain-text error: `message` and a newline.
    pub(crate) fn error(status: StatusCode, message: &str) -> Reply {
        Reply::with(
            status,
            "text/plain; charset=utf-8",
            format!("{message}\n").into_bytes(),
        )
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// Runs `build` on the blocking pool, so a snapshot of a million tasks and
/// its rendering never hold up a runtime worker (other tasks keep running).
pub(crate) async fn off_worker(build: impl FnOnce() -> Reply + Send + 'static) -> Reply {
    match tokio::task::spawn_blocking(build).await {
        Ok(reply) => reply,
        Err(e) => Reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("leakcheck: building the response failed: {e}"),
        ),
    }
}
