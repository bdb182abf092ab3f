#[leakcheck::test(grace = "100ms", max_tasks = 4, grace = "2s")]
async fn duplicate_key() {}

fn main() {}
