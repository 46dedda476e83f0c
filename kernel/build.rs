//! Links the kernel with our own script into the higher half. Only the
//! `kernel` binary gets these arguments, so host tools are unaffected.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-Wl,--build-id=none",
        "-Wl,-z,max-page-size=0x1000",
        "-Wl,--no-relax",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{dir}/linker.ld");
    println!("cargo:rerun-if-changed=linker.ld");
    build_vdso(&dir);
}

/// Links kernel/vdso into the shared object the kernel maps into every
/// process (included with include_bytes!): the host's C compiler driver
/// assembles and links it, as it links the kernel itself.
fn build_vdso(dir: &str) {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    for f in ["vdso.S", "vdso.ld", "vdso.lds"] {
        println!("cargo:rerun-if-changed=vdso/{f}");
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = std::process::Command::new(&cc)
        .args([
            "-nostdlib",
            "-shared",
            "-fPIC",
            "-Wl,-soname,linux-vdso.so.1",
            "-Wl,--hash-style=both",
            "-Wl,--build-id=none",
            "-Wl,-z,max-page-size=4096",
        ])
        .arg(format!("-Wl,--version-script={dir}/vdso/vdso.lds"))
        .arg(format!("-Wl,-T,{dir}/vdso/vdso.ld"))
        .arg("-o")
        .arg(format!("{out}/vdso.so"))
        .arg(format!("{dir}/vdso/vdso.S"))
        .status()
        .unwrap_or_else(|e| panic!("{cc}: {e}"));
    assert!(status.success(), "linking the vDSO failed");
}
