#[leakcheck::test(max_tasks = "10")]
async fn max_tasks_string() {}

fn main() {}
