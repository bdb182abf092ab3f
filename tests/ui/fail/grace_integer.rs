#[leakcheck::test(grace = 5)]
async fn grace_integer() {}

fn main() {}
