//! Generate Rust bindings from the committed include/rewire.h.
fn main() {
    let header = concat!(env!("CARGO_MANIFEST_DIR"), "/../../include/rewire.h");
    println!("cargo:rerun-if-changed={header}");
    let out =
        std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("bindings.rs");
    bindgen::Builder::default()
        .header(header)
        .allowlist_function("rewire_.*")
        .allowlist_type("rewire_.*")
        .allowlist_var("REWIRE_.*")
        .generate()
        .expect("bindgen parses include/rewire.h")
        .write_to_file(out)
        .expect("write bindings");
}
