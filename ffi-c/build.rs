// The shared library's soname carries the ABI version: a C program linked
// against libctx.so records libctx.so.0 and keeps working across compatible
// upgrades. Bump it (and VERSION_MAJOR in c.mk) on an incompatible change.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libctx.so.0");
    println!("cargo:rerun-if-changed=build.rs");
}
