#[leakcheck::test(ignore_fn = ["hyper::client", ""])]
async fn empty_ignore() {}

fn main() {}
