//! Short, portable source paths: what reports print and ignore rules match.
//!
//! rustc records a workspace member's files relative to the workspace root
//! (`tests/server.rs`) but a dependency's files as absolute machine paths
//! (`/home/me/.cargo/registry/src/index.crates.io-…/pool-1.2.3/src/pool.rs`).
//! Reports print every path in one form that reads the same on every
//! machine: `pool-1.2.3/src/pool.rs`.

use std::borrow::Cow;
use std::path::Path;
use std::sync::OnceLock;

/// The short form of `file`: relative to the workspace root when under it,
/// `crate-1.2.3/src/x.rs` for a crates.io dependency, `repo@rev/src/x.rs`
/// for a git dependency, `rust/library/std/src/x.rs` for the toolchain's
/// sources; otherwise `file` unchanged.
pub(crate) fn short(file: &str) -> Cow<'_, str> {
    if !file.starts_with('/') {
        return Cow::Borrowed(file);
    }
    if let Some(rest) = file.strip_prefix("/rustc/") {
        // /rustc/<commit>/library/std/src/...
        if let Some((_, inside)) = rest.split_once('/') {
            return Cow::Owned(format!("rust/{inside}"));
        }
    }
    if let Some(inside) = file
        .split_once("/registry/src/")
        .and_then(|(_, after)| after.split_once('/'))
        .map(|(_index, rest)| rest)
    {
        return Cow::Borrowed(inside);
    }
    if let Some((_, inside)) = file.split_once("/git/checkouts/") {
        // <repo>-<hash>/<rev>/path  →  <repo>@<rev>/path
        let mut parts = inside.splitn(3, '/');
        if let (Some(repo), Some(rev), Some(path)) = (parts.next(), parts.next(), parts.next()) {
            let repo = repo.rsplit_once('-').map_or(repo, |(name, _)| name);
            return Cow::Owned(format!("{repo}@{rev}/{path}"));
        }
    }
    match Path::new(file).strip_prefix(workspace_root()) {
        Ok(inside) => Cow::Owned(inside.display().to_string()),
        Err(_) => Cow::Borrowed(file),
    }
}

/// The nearest ancestor of the working directory that holds a `Cargo.lock`
/// (the workspace root, which spawn sites of workspace members are relative
/// to), else the working directory.
fn workspace_root() -> &'static Path {
    static ROOT: OnceLock<std::path::PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let cwd = std::env::current_dir().unwrap_or_default();
        cwd.ancestors()
            .find(|dir| dir.join("Cargo.lock").is_file())
            .unwrap_or(&cwd)
            .to_path_buf()
    })
}

/// The crate a short path belongs to, for a dependency: `tokio` for
/// `tokio-1.54.1/src/task/spawn.rs`. `None` for the workspace's own files.
pub(crate) fn dependency_crate(short: &str) -> Option<&str> {
    let first = short.split('/').next()?;
    let (name, version) = first.rsplit_once('-')?;
    version
        .starts_with(|c: char| c.is_ascii_digit())
        .then_some(name)
        .or_else(|| first.split_once('@').map(|(repo, _)| repo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_paths_shorten_to_crate_and_version() {
        let p = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pool-1.2.3/src/pool.rs";
        assert_eq!(short(p), "pool-1.2.3/src/pool.rs");
        assert_eq!(dependency_crate(&short(p)), Some("pool"));
    }

    #[test]
    fn git_checkouts_shorten_to_repo_at_rev() {
        let p = "/home/me/.cargo/git/checkouts/mini-redis-8b1e3b6c0f2a9d4e/a1b2c3d/src/server.rs";
        assert_eq!(short(p), "mini-redis@a1b2c3d/src/server.rs");
        assert_eq!(dependency_crate(&short(p)), Some("mini-redis"));
    }

    #[test]
    fn toolchain_and_relative_paths() {
        let p = "/rustc/59807616e1a2/library/std/src/thread/mod.rs";
        assert_eq!(short(p), "rust/library/std/src/thread/mod.rs");
        assert_eq!(short("tests/server.rs"), "tests/server.rs");
        assert_eq!(dependency_crate("tests/server.rs"), None);
        assert_eq!(dependency_crate("tokio-1.54.1/src/lib.rs"), Some("tokio"));
        assert_eq!(
            dependency_crate("tracing-core-0.1.36/src/lib.rs"),
            Some("tracing-core")
        );
    }
}
