//! The query parameters of the endpoint's routes, checked: an unknown
//! parameter or a bad value is a 400 whose message names the parameter and
//! the accepted values.

/// How many groups or tasks a response lists unless `?limit=` says otherwise.
pub(crate) const DEFAULT_LIMIT: usize = 10_000;
/// The largest `?limit=`.
pub(crate) const MAX_LIMIT: usize = 100_000;
/// How long `tasks/growth` waits unless `?seconds=` says otherwise.
pub(crate) const DEFAULT_SECONDS: u64 = 10;
/// The longest `tasks/growth` wait.
pub(crate) const MAX_SECONDS: u64 = 600;

/// A query parameter a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    Debug,
    Format,
    Limit,
    Seconds,
}

impl Param {
    fn name(self) -> &'static str {
        match self {
            Param::Debug => "debug",
            Param::Format => "format",
            Param::Limit => "limit",
            Param::Seconds => "seconds",
        }
    }
}

/// `text` (the default) or `json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
}

/// A request's parameters, defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Params {
    /// `debug=2`: every task, not only the groups.
    pub(crate) every_task: bool,
    pub(crate) format: Format,
    pub(crate) limit: usize,
    pub(crate) seconds: u64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            every_task: false,
            format: Format::Text,
            limit: DEFAULT_LIMIT,
            seconds: DEFAULT_SECONDS,
        }
    }
}

/// Parses `query` for a route that accepts `accepted`; the error is the
/// 400's message.
pub(crate) fn parse(query: Option<&str>, accepted: &[Param]) -> Result<Params, String> {
    let mut params = Params::default();
    let mut seen = Vec::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let Some(param) = accepted.iter().copied().find(|p| p.name() == key) else {
            let names: Vec<&str> = accepted.iter().map(|p| p.name()).collect();
            return Err(match names.is_empty() {
                true => format!("unknown query parameter `{key}`: this path takes none"),
                false => format!(
                    "unknown query parameter `{key}`: this path accepts {}",
                    names.join(", ")
                ),
            });
        };
        if seen.contains(&param) {
            return Err(format!("query parameter `{key}` is given twice"));
        }
        seen.push(param);
        set(&mut params, param, &value)?;
    }
    Ok(params)
}

fn set(params: &mut Params, param: Param, value: &str) -> Result<(), String> {
    let bad = |expected: &str| {
        format!(
            "bad value `{value}` for `{}`: expected {expected}",
            param.name()
        )
    };
    match param {
        Param::Debug => {
            params.every_task = match value {
                "1" => false,
                "2" => true,
                _ => return Err(bad("1 (tasks grouped by spawn site) or 2 (every task); for a pprof profile, GET tasks/pprof")),
            }
        }
        Param::Format => {
            params.format = match value {
                "text" => Format::Text,
                "json" => Format::Json,
                _ => return Err(bad("`text` or `json`")),
            }
        }
        Param::Limit => {
            params.limit = number(value, 1, MAX_LIMIT as u64).ok_or_else(|| {
                bad(&format!("a whole number from 1 to {MAX_LIMIT}"))
            })? as usize
        }
        Param::Seconds => {
            params.seconds = number(value, 1, MAX_SECONDS)
                .ok_or_else(|| bad(&format!("a whole number of seconds from 1 to {MAX_SECONDS}")))?
        }
    }
    Ok(())
}

fn number(value: &str, min: u64, max: u64) -> Option<u64> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASKS: &[Param] = &[Param::Debug, Param::Format, Param::Limit];

    #[test]
    fn defaults_and_values() {
        assert_eq!(parse(None, TASKS).unwrap(), Params::default());
        let p = parse(Some("debug=2&format=json&limit=5"), TASKS).unwrap();
        assert!(p.every_task);
        assert_eq!((p.format, p.limit), (Format::Json, 5));
    }

    #[test]
    fn bad_values_name_the_parameter_and_what_it_takes() {
        let err = parse(Some("debug=3"), TASKS).unwrap_err();
        assert!(
            err.starts_with("bad value `3` for `debug`: expected 1"),
            "{err}"
        );
        let err = parse(Some("format=xml"), TASKS).unwrap_err();
        assert_eq!(
            err,
            "bad value `xml` for `format`: expected `text` or `json`"
        );
        let err = parse(Some("limit=0"), TASKS).unwrap_err();
        assert!(err.contains("from 1 to 100000"), "{err}");
        let err = parse(Some("seconds=abc"), &[Param::Seconds]).unwrap_err();
        assert!(err.starts_with("bad value `abc` for `seconds`"), "{err}");
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused() {
        let err = parse(Some("fromat=json"), TASKS).unwrap_err();
        assert_eq!(
            err,
            "unknown query parameter `fromat`: this path accepts debug, format, limit"
        );
        let err = parse(Some("limit=1&limit=2"), TASKS).unwrap_err();
        assert_eq!(err, "query parameter `limit` is given twice");
    }
}
