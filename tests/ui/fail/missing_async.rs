#[leakcheck::test]
fn missing_async() {}

fn main() {}
