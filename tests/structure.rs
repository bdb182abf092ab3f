//! The shape of the source: the module graph of each crate has no cycles,
//! and no function grows much past 60 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest function allowed, in lines from `fn` to its closing brace.
const MAX_FN_LINES: usize = 66;

fn crate_dirs() -> [PathBuf; 2] {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    [
        root.join("leakcheck/src"),
        root.join("leakcheck-macros/src"),
    ]
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path, text));
        }
    }
    out
}

/// The code of a file without its `#[cfg(test)] mod tests` (kept at the end).
fn code(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |end| &text[..end])
}

/// The module a file is (`mode/hooks.rs` → `mode::hooks`, `layer/mod.rs`
/// → `layer`, `lib.rs` → the root, "").
fn module_of(dir: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(dir).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

/// `code` without `//` comments (doc links name modules without using them).
fn without_comments(code: &str) -> String {
    code.lines()
        .map(|l| l.find("//").map_or(l, |at| &l[..at]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths of a use tree starting at `rest` (`a::b`, `a::{b, c::d}`),
/// each as its segments.
fn use_tree(rest: &str) -> Vec<Vec<String>> {
    let mut segments = Vec::new();
    let mut rest = rest.trim_start();
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let close = group
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(group.len(), |(at, _)| at);
            let mut out = Vec::new();
            let (mut depth, mut from) = (0, 0);
            let inner = &group[..close];
            for (at, c) in inner.char_indices().chain([(inner.len(), ',')]) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        for tail in use_tree(&inner[from..at]) {
                            out.push(segments.iter().cloned().chain(tail).collect());
                        }
                        from = at + 1;
                    }
                    _ => {}
                }
            }
            return out;
        }
        let end = rest
            .find(|c: char| !c.is_alphanumeric() && c != '_')
            .unwrap_or(rest.len());
        if end == 0 {
            return vec![segments];
        }
        segments.push(rest[..end].to_owned());
        match rest[end..].trim_start().strip_prefix("::") {
            Some(next) => rest = next.trim_start(),
            None => return vec![segments],
        }
    }
}

/// The names the crate root re-exports (`pub use report::Report;`), with
/// the module each comes from.
fn root_exports(lib: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (at, _) in lib.match_indices("pub use ") {
        for mut path in use_tree(&lib[at + "pub use ".len()..]) {
            if path.len() >= 2 {
                let name = path.pop().unwrap();
                out.insert(name, path);
            }
        }
    }
    out
}

/// The modules `code` (of module `me`) names through `crate::` and
/// `super::` paths, each resolved to the longest module it names.
fn references(
    code: &str,
    me: &str,
    modules: &BTreeSet<String>,
    exports: &BTreeMap<String, Vec<String>>,
) -> BTreeSet<String> {
    let code = without_comments(code);
    let mut found = BTreeSet::new();
    let parent = |m: &str| {
        m.rsplit_once("::")
            .map_or(String::new(), |(p, _)| p.to_owned())
    };
    for prefix in ["crate::", "super::"] {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue; // `super::super::` is read from its first `super`
            }
            for path in use_tree(&code[at..]) {
                let mut path = path.into_iter().peekable();
                let mut base: Vec<String> = Vec::new();
                match path.next().as_deref() {
                    Some("crate") => {}
                    Some("super") => {
                        let mut up = parent(me);
                        while path.next_if(|s| s == "super").is_some() {
                            up = parent(&up);
                        }
                        base.extend(up.split("::").filter(|s| !s.is_empty()).map(str::to_owned));
                    }
                    _ => continue,
                }
                let mut rest: Vec<String> = path.collect();
                if base.is_empty() {
                    if let Some(from) = rest.first().and_then(|n| exports.get(n)) {
                        rest.splice(..1, from.iter().cloned());
                    }
                }
                let full: Vec<String> = base.into_iter().chain(rest).collect();
                let named = (0..=full.len())
                    .rev()
                    .map(|n| full[..n].join("::"))
                    .find(|m| modules.contains(m));
                found.extend(named);
            }
        }
    }
    found.remove(me);
    found.remove("");
    found
}

/// Whether `a` is `b` or contains it (`mode` contains `mode::hooks`).
fn contains(a: &str, b: &str) -> bool {
    a == b || b.strip_prefix(a).is_some_and(|rest| rest.starts_with("::"))
}

/// A cycle in `graph`, if there is one, as the modules along it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut found = path[start..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// Each crate's module graph, file by file: a module's uses of its own
/// descendants and ancestors (a parent declaring its children, a child
/// using its parent's items) are left out; sibling and cross-tree uses
/// are kept.
fn graphs() -> Vec<(PathBuf, BTreeMap<String, BTreeSet<String>>)> {
    let mut out = Vec::new();
    for dir in crate_dirs() {
        let files = sources(&dir);
        let modules: BTreeSet<String> = files.iter().map(|(f, _)| module_of(&dir, f)).collect();
        let lib = std::fs::read_to_string(dir.join("lib.rs")).unwrap();
        let exports = root_exports(&lib);
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (file, text) in &files {
            let me = module_of(&dir, file);
            if me.is_empty() {
                continue; // the root declares every module and re-exports the API
            }
            let uses = references(code(text), &me, &modules, &exports);
            let uses: Vec<String> = uses
                .into_iter()
                .filter(|m| !contains(&me, m) && !contains(m, &me))
                .collect();
            graph.entry(me).or_default().extend(uses);
        }
        out.push((dir, graph));
    }
    out
}

#[test]
fn module_graphs_have_no_cycles() {
    for (dir, graph) in graphs() {
        if let Some(found) = cycle(&graph) {
            panic!("{}: import cycle {}", dir.display(), found.join(" → "));
        }
        // and between the top-level modules, whatever file does the using
        let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let first = |m: &str| m.split("::").next().unwrap_or("").to_owned();
        for (from, uses) in &graph {
            let uses = uses.iter().map(|m| first(m)).filter(|m| *m != first(from));
            top.entry(first(from)).or_default().extend(uses);
        }
        if let Some(found) = cycle(&top) {
            panic!("{}: import cycle {}", dir.display(), found.join(" → "));
        }
    }
}

/// (first line, length) of each function in `code` longer than `max` lines.
fn long_functions(code: &str, max: usize) -> Vec<(usize, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut long = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let is_fn =
            trimmed.starts_with("fn ") || trimmed.contains(" fn ") && !trimmed.starts_with("//");
        if !is_fn {
            continue;
        }
        let indent = &line[..line.len() - trimmed.len()];
        // the body opens on the `fn` line or, for a signature over several
        // lines, on the first line back at its indentation (`) -> T {`)
        let opens = lines[start..].iter().position(|l| {
            let here = std::ptr::eq(*l, *line)
                || l.starts_with(indent) && !l[indent.len()..].starts_with(' ');
            here && l.trim_end().ends_with(['{', '}', ';'])
        });
        let Some(opens) = opens.filter(|o| lines[start + o].trim_end().ends_with('{')) else {
            continue; // a declaration, or a body on one line
        };
        let close = format!("{indent}}}");
        let end = lines[start + opens..].iter().position(|l| *l == close);
        if let Some(len) = end.map(|e| e + opens + 1).filter(|len| *len > max) {
            long.push((start + 1, len));
        }
    }
    long
}

#[test]
fn no_function_is_much_over_60_lines() {
    let mut long = Vec::new();
    for dir in crate_dirs() {
        for (file, text) in sources(&dir) {
            for (line, len) in long_functions(code(&text), MAX_FN_LINES) {
                long.push(format!("{}:{line} ({len} lines)", file.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_checker_finds_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> =
        [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"])]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
            .collect();
    assert_eq!(cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    let modules: BTreeSet<String> = [
        "mode",
        "mode::hooks",
        "state",
        "report",
        "process::tee",
        "process::raw",
    ]
    .map(str::to_owned)
    .into();
    let exports = root_exports("pub use report::{Report, ReportKind};\n");
    let uses = references(
        "use crate::{mode::hooks::on_spawn, state};\nlet x = crate::Report::default();\n// crate::nothing",
        "mode",
        &modules,
        &exports,
    );
    let want: BTreeSet<String> = ["mode::hooks", "state", "report"].map(str::to_owned).into();
    assert_eq!(uses, want);
    let siblings = references(
        "super::raw::run_raw(ask);",
        "process::tee",
        &modules,
        &exports,
    );
    assert_eq!(siblings, BTreeSet::from(["process::raw".to_owned()]));
    let code = "fn short() {\n}\n\nimpl X {\n    pub(crate) fn long() {\n        a();\n        b();\n    }\n}\n";
    assert_eq!(long_functions(code, 3), [(5, 4)]);
    let multi_line = "fn long(\n    a: u8,\n) -> u8 {\n    a\n}\n";
    assert_eq!(long_functions(multi_line, 4), [(1, 5)]);
}
