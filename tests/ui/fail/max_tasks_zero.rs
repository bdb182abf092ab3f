#[leakcheck::test(max_tasks = 0)]
async fn max_tasks_zero() {}

fn main() {}
