//! The default BareFlow app: greets, shows its arguments and configuration,
//! does a little float math (to prove SSE works) and exits with a code.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

#[allow(unused_imports)] // hosted, std's prelude already has these
use bareflow_sys::prelude::*;
use bareflow_sys::{env, time::Instant};

bareflow_sys::main!(app);

fn app() -> i32 {
    let start = Instant::now();
    let args = env::args();
    println!("Hello from BareFlow!");
    println!("args: {:?}", &args[1..]);
    if let Some(who) = env::var("GREET") {
        println!("greetings, {who}");
    }
    // A little float math, which needs SSE in the image.
    let x: f64 = (1..=20).map(|i| 1.0 / (i as f64 * i as f64)).sum();
    println!("sum 1/n^2 (n<=20) = {x:.6}");
    let code = args
        .iter()
        .position(|a| a == "--exit")
        .and_then(|i| args.get(i + 1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    println!("elapsed: {} us", start.elapsed().as_micros());
    code
}
