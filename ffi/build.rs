//! Gives `libreplication.so` a SONAME, so programs linked against it record `libreplication.so`
//! (found through their rpath or the loader's search path) instead of the path it was linked
//! from. Applies to the cdylib only.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libreplication.so");
    }
}
