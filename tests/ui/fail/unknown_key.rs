#[leakcheck::test(graze = "500ms")]
async fn unknown_key() {}

fn main() {}
