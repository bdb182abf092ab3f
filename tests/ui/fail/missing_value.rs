#[leakcheck::test(grace)]
async fn missing_value() {}

fn main() {}
