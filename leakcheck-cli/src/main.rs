//! `leakcheck`: the live tokio tasks of a running service, through
//! leakcheck's debug endpoint (`leakcheck::endpoint::router` or
//! `leakcheck::serve`).
//!
//! ```text
//! leakcheck top http://127.0.0.1:6060/debug          # grouped by spawn site
//! leakcheck save http://127.0.0.1:6060/debug a.json  # a JSON dump
//! sleep 60
//! leakcheck save http://127.0.0.1:6060/debug b.json
//! leakcheck diff a.json b.json                       # what grew: the leak suspects
//! ```
//!
//! URL is the endpoint's mount point, taken as given: `leakcheck` adds
//! `/tasks` to it (`http://127.0.0.1:3000` for routes mounted at the root).
//! `save` warns on stderr when the dump it saved was cut by its `--limit`.
//!
//! Exit status: 0 on success, 1 on an error (unreachable service, non-200
//! answer, unreadable file), 2 on a usage error.

mod args;
mod fetch;

use args::{Args, Command, USAGE};
use leakcheck::endpoint::{growth, Dump};

/// Groups `save` asks for unless `--limit` says otherwise: the endpoint's
/// most.
const SAVE_LIMIT: u32 = 100_000;

/// What a command prints: its output, and warnings for stderr.
#[derive(Debug, Default)]
struct Printed {
    stdout: String,
    warnings: Vec<String>,
}

impl From<String> for Printed {
    fn from(stdout: String) -> Printed {
        Printed {
            stdout,
            warnings: Vec::new(),
        }
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match args::parse(&argv, std::env::var("LEAKCHECK_TOKEN").ok()) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("leakcheck: {message}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    match run(&args) {
        Ok(printed) => {
            for warning in &printed.warnings {
                eprintln!("leakcheck: warning: {warning}");
            }
            print!("{}", printed.stdout);
        }
        Err(message) => {
            eprintln!("leakcheck: {message}");
            std::process::exit(1);
        }
    }
}

/// What the command prints, or the error.
fn run(args: &Args) -> Result<Printed, String> {
    let token = args.token.as_deref();
    match &args.command {
        Command::Help => Ok(format!("{USAGE}\n").into()),
        Command::Top { url, limit } => {
            let query = limit.map(|n| format!("?limit={n}")).unwrap_or_default();
            let url = format!("{}/tasks{query}", fetch::base(url)?);
            // the server's hint is for URLs; here it is an option
            let text = fetch::get(&url, token)?.replace("?limit=N for more", "--limit N for more");
            Ok(Printed::from(text))
        }
        Command::Save { url, file, limit } => {
            let limit = limit.unwrap_or(SAVE_LIMIT);
            let url = format!("{}/tasks?format=json&limit={limit}", fetch::base(url)?);
            let text = fetch::get(&url, token)?;
            let dump = Dump::parse(&text).map_err(|e| format!("GET {url}: {e}"))?;
            std::fs::write(file, &text).map_err(|e| format!("could not write {file}: {e}"))?;
            Ok(saved(&dump, file))
        }
        Command::Diff { before, after } => {
            let (before, after) = (load(before)?, load(after)?);
            Ok(growth(&before, &after).to_string().into())
        }
    }
}

/// What `save` prints for `dump` saved to `file`: a warning too if the
/// dump was cut by its limit.
fn saved(dump: &Dump, file: &str) -> Printed {
    let (tasks, groups) = (dump.total_tasks, dump.total_groups);
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let mut printed = Printed::from(format!(
        "saved {tasks} live task{} in {groups} group{} to {file}\n",
        plural(tasks),
        plural(groups)
    ));
    let listed = dump.groups.len();
    if listed < groups {
        let in_listed: usize = dump.groups.iter().map(|g| g.count).sum();
        printed.warnings.push(format!(
            "the dump was cut: {file} lists the {listed} largest of {groups} groups \
             ({in_listed} of {tasks} tasks; --limit N for more, at most {SAVE_LIMIT}); \
             a diff against it cannot see growth in the groups left out"
        ));
    }
    printed
}

/// A saved dump; errors name the file.
fn load(file: &str) -> Result<Dump, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("could not read {file}: {e}"))?;
    Dump::parse(&text).map_err(|e| format!("{file}: {e}"))
}
