#[leakcheck::test]
#[should_panic(expected = "boom")]
async fn panics() {
    panic!("boom");
}

fn main() {}
