/// Doc comments and lint levels are kept too.
#[leakcheck::test(flavor = "multi_thread")]
#[ignore = "slow"]
#[allow(clippy::unit_cmp)]
async fn ignored() {
    assert_eq!((), ());
}

fn main() {}
