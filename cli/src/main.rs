//! `bareflow`: build, pack, run, test and bench BareFlow images (`cargo bareflow ...`).
#![forbid(unsafe_code)]

fn main() {
    // Arguments reach the guest as UTF-8 text (the kernel command line): refuse
    // one that is not, by its place, instead of panicking or passing U+FFFD on.
    let mut args = Vec::new();
    for (i, a) in std::env::args_os().enumerate().skip(1) {
        match a.into_string() {
            Ok(a) => args.push(a),
            Err(a) => {
                eprintln!(
                    "bareflow: error: argument {i} ({:?}) is not valid UTF-8; BareFlow passes arguments to the guest as UTF-8 text",
                    a.to_string_lossy()
                );
                std::process::exit(2)
            }
        }
    }
    match bareflow_cli::main_with_args(&args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("bareflow: error: {e:#}");
            std::process::exit(2)
        }
    }
}
