#[leakcheck::test]
async fn bad_return_type() -> u32 {
    42
}

fn main() {}
