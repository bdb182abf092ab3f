fn main() {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    let tracker = leakcheck::Options::new().grace(std::time::Duration::from_millis(100)).instrument(&mut builder);
    let rt = builder.enable_all().build().unwrap();
    rt.block_on(async {
        tracker.set_baseline();
        let (_tx, mut rx) = tokio::sync::mpsc::channel::<u8>(1);
        start(&mut rx);
        tokio::spawn(async move { rx.recv().await });
        for _ in 0..5 { tokio::spawn(std::future::pending::<()>()); }
        tokio::task::yield_now().await;
        println!("{}", tracker.snapshot());
        if let Err(r) = tracker.find_leaks().await { println!("{r}"); }
    });
}
fn start(_rx: &mut tokio::sync::mpsc::Receiver<u8>) { helper() }
fn helper() { tokio::spawn(async { loop { tokio::time::sleep(std::time::Duration::from_millis(10)).await } }); }
