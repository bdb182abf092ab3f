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

/// The top-level module a file belongs to (`mode/hooks.rs` → `mode`).
fn module_of(dir: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(dir).unwrap();
    let first = relative
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The top-level modules `code` names through `crate::`.
fn references(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group[..group.find('}').unwrap_or(0)]
                .split(',')
                .map(|n| n.trim().split("::").next().unwrap_or(""))
                .collect(),
            None => vec![rest
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .next()
                .unwrap_or("")],
        };
        found.extend(
            names
                .into_iter()
                .filter(|n| modules.contains(*n))
                .map(str::to_owned),
        );
    }
    found
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

#[test]
fn module_graphs_have_no_cycles() {
    for dir in crate_dirs() {
        let files = sources(&dir);
        let modules: BTreeSet<String> = files
            .iter()
            .map(|(f, _)| module_of(&dir, f))
            .filter(|m| m != "lib")
            .collect();
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (file, text) in &files {
            let module = module_of(&dir, file);
            if module == "lib" {
                continue; // the root declares every module and re-exports the API
            }
            let mut uses = references(code(text), &modules);
            uses.remove(&module);
            graph.entry(module).or_default().extend(uses);
        }
        if let Some(found) = cycle(&graph) {
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
        if !is_fn || !line.trim_end().ends_with('{') {
            continue;
        }
        let close = format!("{}}}", &line[..line.len() - trimmed.len()]);
        let end = lines[start..].iter().position(|l| *l == close);
        if let Some(len) = end.map(|e| e + 1).filter(|len| *len > max) {
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
    let modules: BTreeSet<String> = ["mode", "state"].map(str::to_owned).into();
    let uses = references(
        "use crate::{mode::Which, state};\nlet x = crate::mode::f();",
        &modules,
    );
    assert_eq!(uses, modules);
    let code = "fn short() {\n}\n\nimpl X {\n    pub(crate) fn long() {\n        a();\n        b();\n    }\n}\n";
    assert_eq!(long_functions(code, 3), [(5, 4)]);
}
