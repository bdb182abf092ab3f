//! The standalone server's token check: `Authorization: Bearer <token>` on
//! every request, compared in constant time.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::reply::Reply;

/// Whether `headers` carry `token` (always true without a token).
pub(crate) fn allowed(headers: &HeaderMap, token: Option<&str>) -> bool {
    let Some(token) = token else {
        return true;
    };
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    same(sent.as_bytes(), token.as_bytes())
}

/// Equal bytes, in a time that depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The 401 for a missing or wrong token.
pub(crate) fn unauthorized() -> Response {
    let mut response = Reply::error(
        StatusCode::UNAUTHORIZED,
        "missing or wrong token: send `Authorization: Bearer <token>` \
         (leakcheck's CLI: --token or LEAKCHECK_TOKEN)",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_token_must_match_exactly() {
        assert!(allowed(&HeaderMap::new(), None));
        assert!(allowed(&with("Bearer s3cret"), Some("s3cret")));
        assert!(!allowed(&with("Bearer s3cre"), Some("s3cret")));
        assert!(!allowed(&with("s3cret"), Some("s3cret")));
        assert!(!allowed(&HeaderMap::new(), Some("s3cret")));
    }
}
