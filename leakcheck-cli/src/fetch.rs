//! Talking to a service's endpoint: the mount URL, and GET with a token.

use std::time::Duration;

/// The endpoint's mount URL from what the user typed: the URL as given
/// (its path is the mount point, none for routes mounted at the root), a
/// trailing `/` dropped. Nothing is guessed: `http://h/debug/tasks` is a
/// service mounted at `/debug/tasks`.
pub(crate) fn base(url: &str) -> Result<String, String> {
    let bad = |why: &str| {
        format!(
            "bad URL `{url}`: {why}; expected http://HOST:PORT[/MOUNT], \
             e.g. http://127.0.0.1:6060/debug"
        )
    };
    let rest = match url.split_once("://") {
        Some(("http", rest)) => rest,
        Some(("https", rest)) if cfg!(feature = "tls") => rest,
        Some(("https", _)) => {
            return Err(bad("https needs leakcheck-cli built with `--features tls`"))
        }
        _ => return Err(bad("not an http:// URL")),
    };
    if url.contains(['?', '#']) {
        return Err(bad("a query or fragment is not expected"));
    }
    let host = rest.split_once('/').map_or(rest, |(host, _)| host);
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// `GET url` as text; any answer but 200 is an error with the server's
/// message.
pub(crate) fn get(url: &str, token: Option<&str>) -> Result<String, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    let mut request = agent.get(url);
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let mut response = request
        .call()
        .map_err(|e| format!("could not GET {url}: {e}"))?;
    let body = response
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .map_err(|e| format!("GET {url}: could not read the answer: {e}"))?;
    let status = response.status();
    if status != 200 {
        let hint = match status.as_u16() {
            401 => " (pass the service's token with --token or LEAKCHECK_TOKEN)",
            404 => {
                " (URL must be where the service mounts leakcheck's endpoint, taken as \
                 given, e.g. http://127.0.0.1:6060/debug; leakcheck adds /tasks to it)"
            }
            _ => "",
        };
        return Err(format!("GET {url}: {status}{hint}: {}", body.trim_end()));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::base;

    #[test]
    fn urls_are_the_mount_point_as_given() {
        let ok = |url: &str| base(url).unwrap();
        assert_eq!(ok("http://h:1/debug"), "http://h:1/debug");
        assert_eq!(ok("http://h:1/debug/"), "http://h:1/debug");
        assert_eq!(ok("http://h:1/admin/debug"), "http://h:1/admin/debug");
        // routes mounted at the root
        assert_eq!(ok("http://127.0.0.1:6060"), "http://127.0.0.1:6060");
        assert_eq!(ok("http://h:1/"), "http://h:1");
        // no guessing: a mount point that ends in `tasks` is kept
        assert_eq!(ok("http://h:1/tasks"), "http://h:1/tasks");
        assert_eq!(ok("http://h:1/debug/tasks"), "http://h:1/debug/tasks");
    }

    #[test]
    fn bad_urls_say_what_is_expected() {
        let err = base("127.0.0.1:6060").unwrap_err();
        assert!(
            err.starts_with("bad URL `127.0.0.1:6060`: not an http:// URL; expected"),
            "{err}"
        );
        let err = base("http://h:1/debug/tasks?debug=2").unwrap_err();
        assert!(err.contains("a query or fragment is not expected"), "{err}");
        assert!(base("http:///debug").unwrap_err().contains("no host"));
    }
}
