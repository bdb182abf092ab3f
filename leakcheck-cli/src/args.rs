//! The command line: a subcommand, its operands, and `--token`/`--limit`.

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// Print the grouped view of the service at the URL.
    Top { url: String, limit: Option<u32> },
    /// Save a JSON dump of the service at the URL to a file.
    Save {
        url: String,
        file: String,
        limit: Option<u32>,
    },
    /// Compare two saved dumps.
    Diff { before: String, after: String },
    /// Print the usage.
    Help,
}

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Args {
    pub(crate) command: Command,
    /// `--token`, else `LEAKCHECK_TOKEN`.
    pub(crate) token: Option<String>,
}

pub(crate) const USAGE: &str = "\
usage:
  leakcheck top URL [--limit N]   live tasks grouped by spawn site, largest first
  leakcheck save URL FILE [--limit N]
                                  save a JSON dump of the live tasks to FILE
  leakcheck diff BEFORE AFTER     groups whose task count grew from one saved dump to the other

URL is where the service mounts leakcheck's endpoint, taken as given (leakcheck adds
/tasks to it): http://127.0.0.1:6060/debug for leakcheck::serve or a router nested at
/debug, http://127.0.0.1:3000 for a router mounted at the root.

options:
  --token TOKEN   send `Authorization: Bearer TOKEN` (default: $LEAKCHECK_TOKEN)
  --limit N       list at most N groups (top; save: default 100000, the endpoint's most;
                  save warns when the dump it saved was cut)";

/// Parses the arguments after the program name; the error is a message
/// for the user (the usage follows it).
pub(crate) fn parse(args: &[String], env_token: Option<String>) -> Result<Args, String> {
    let mut operands = Vec::new();
    let (mut token, mut limit) = (None, None);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut value = |name: &str| {
            rest.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "-h" | "--help" => operands.insert(0, "help".to_owned()),
            "--token" => token = Some(value("--token")?),
            "--limit" => {
                let n = value("--limit")?;
                let bad = || format!("bad value `{n}` for --limit: expected a whole number from 1");
                limit = Some(n.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(bad)?);
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option `{flag}`")),
            _ => operands.push(arg.clone()),
        }
    }
    let command = command(&operands, limit)?;
    Ok(Args {
        command,
        token: token.or(env_token).filter(|t| !t.is_empty()),
    })
}

fn command(operands: &[String], limit: Option<u32>) -> Result<Command, String> {
    let words: Vec<&str> = operands.iter().map(String::as_str).collect();
    let command = match words.as_slice() {
        ["help", ..] | [] => Command::Help,
        ["top", url] => Command::Top {
            url: (*url).to_owned(),
            limit,
        },
        ["save", url, file] => Command::Save {
            url: (*url).to_owned(),
            file: (*file).to_owned(),
            limit,
        },
        ["diff", before, after] => Command::Diff {
            before: (*before).to_owned(),
            after: (*after).to_owned(),
        },
        [name @ ("top" | "save" | "diff"), ..] => {
            return Err(format!("wrong number of arguments for `{name}`"))
        }
        [other, ..] => {
            return Err(format!(
                "unknown command `{other}`: expected top, save or diff"
            ))
        }
    };
    if limit.is_some() && !matches!(command, Command::Top { .. } | Command::Save { .. }) {
        return Err("--limit is for `top` and `save` only".to_owned());
    }
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn commands_and_options() {
        let parsed = parse(&args("top http://h:1 --limit 5"), None).unwrap();
        assert_eq!(
            parsed.command,
            Command::Top {
                url: "http://h:1".into(),
                limit: Some(5)
            }
        );
        let parsed = parse(&args("save --token t u f"), Some("env".into())).unwrap();
        assert_eq!(parsed.token.as_deref(), Some("t"));
        let parsed = parse(&args("save u f --limit 2"), None).unwrap();
        assert_eq!(
            parsed.command,
            Command::Save {
                url: "u".into(),
                file: "f".into(),
                limit: Some(2)
            }
        );
        let parsed = parse(&args("diff a b"), Some("env".into())).unwrap();
        assert_eq!(parsed.token.as_deref(), Some("env"));
        assert_eq!(parse(&[], None).unwrap().command, Command::Help);
    }

    #[test]
    fn mistakes_are_named() {
        let err = |line: &str| parse(&args(line), None).unwrap_err();
        assert_eq!(err("top"), "wrong number of arguments for `top`");
        assert_eq!(
            err("peek u"),
            "unknown command `peek`: expected top, save or diff"
        );
        assert_eq!(
            err("top u --limit x"),
            "bad value `x` for --limit: expected a whole number from 1"
        );
        assert_eq!(err("top u --token"), "--token needs a value");
        assert_eq!(
            err("diff a b --limit 3"),
            "--limit is for `top` and `save` only"
        );
        assert_eq!(err("top u --verbose"), "unknown option `--verbose`");
    }
}
