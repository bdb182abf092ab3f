#[leakcheck::test]
async fn fn_with_params(port: u16) {}

fn main() {}
