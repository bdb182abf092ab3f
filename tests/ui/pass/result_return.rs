use std::num::ParseIntError;

#[leakcheck::test]
async fn question_mark() -> Result<(), ParseIntError> {
    let n: u32 = "7".parse()?;
    assert_eq!(n, 7);
    Ok(())
}

#[leakcheck::test(grace = "10ms")]
async fn boxed_error() -> Result<(), Box<dyn std::error::Error>> {
    let _: u32 = "7".parse()?;
    Ok(())
}

fn main() {}
