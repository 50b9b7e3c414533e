//! `bareflow`: build, pack, run, test and bench BareFlow images (`cargo bareflow ...`).
#![forbid(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match bareflow_cli::main_with_args(&args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("bareflow: error: {e:#}");
            std::process::exit(2)
        }
    }
}
