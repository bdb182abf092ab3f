#[leakcheck::test]
async fn generic_fn<T: Default>() {}

fn main() {}
