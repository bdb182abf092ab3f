#[leakcheck::test]
struct NotAFn;

fn main() {}
