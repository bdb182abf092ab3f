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
//! Exit status: 0 on success, 1 on an error (unreachable service, non-200
//! answer, unreadable file), 2 on a usage error.

mod args;
mod fetch;

use args::{Args, Command, USAGE};
use leakcheck::endpoint::{growth, Dump};

/// Groups (and tasks) `save` asks for: the endpoint's most.
const SAVE_LIMIT: u32 = 100_000;

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
        Ok(output) => print!("{output}"),
        Err(message) => {
            eprintln!("leakcheck: {message}");
            std::process::exit(1);
        }
    }
}

/// What the command prints, or the error.
fn run(args: &Args) -> Result<String, String> {
    let token = args.token.as_deref();
    match &args.command {
        Command::Help => Ok(format!("{USAGE}\n")),
        Command::Top { url, limit } => {
            let query = limit.map(|n| format!("?limit={n}")).unwrap_or_default();
            fetch::get(&format!("{}/tasks{query}", fetch::base(url)?), token)
        }
        Command::Save { url, file } => {
            let url = format!("{}/tasks?format=json&limit={SAVE_LIMIT}", fetch::base(url)?);
            let text = fetch::get(&url, token)?;
            let dump = Dump::parse(&text).map_err(|e| format!("GET {url}: {e}"))?;
            std::fs::write(file, &text).map_err(|e| format!("could not write {file}: {e}"))?;
            let (tasks, groups) = (dump.total_tasks, dump.total_groups);
            let plural = |n: usize| if n == 1 { "" } else { "s" };
            Ok(format!(
                "saved {tasks} live task{} in {groups} group{} to {file}\n",
                plural(tasks),
                plural(groups)
            ))
        }
        Command::Diff { before, after } => {
            let (before, after) = (load(before)?, load(after)?);
            Ok(growth(&before, &after).to_string())
        }
    }
}

/// A saved dump; errors name the file.
fn load(file: &str) -> Result<Dump, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("could not read {file}: {e}"))?;
    Dump::parse(&text).map_err(|e| format!("{file}: {e}"))
}
