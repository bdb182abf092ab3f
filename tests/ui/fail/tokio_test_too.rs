#[leakcheck::test]
#[tokio::test]
async fn tokio_test_too() {}

fn main() {}
