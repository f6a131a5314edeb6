//! rinit's binary brings its own `_start` (src/main.rs) and links no C library, so it is linked
//! without the C start files. The other flags it needs (static, non-PIE, panic=abort) are
//! codegen flags that tools/rustc-workspace-wrapper adds to the rinit crate.
fn main() {
    println!("cargo:rustc-link-arg-bins=-nostartfiles");
    println!("cargo:rerun-if-changed=build.rs");
}
