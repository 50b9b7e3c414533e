//! Declares the `loom` cfg so that `--cfg loom` (model-checking builds) is not an unknown cfg.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(loom)");
}
