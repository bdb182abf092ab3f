// leakcheck brings its own tokio: `crate` names leakcheck, as a renamed
// dependency or re-export would.
mod reexport {
    // Used only by the test below, which a non-test build drops.
    #[allow(unused_imports)]
    pub use leakcheck as lc;
}

#[leakcheck::test(crate = "leakcheck")]
async fn plain_name() {}

#[leakcheck::test(crate = "reexport::lc")]
async fn through_a_reexport() {}

fn main() {}
