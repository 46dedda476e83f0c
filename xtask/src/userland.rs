//! The test userland: builds `user/` (a Cargo workspace of its own) as
//! static glibc executables for the guest, and lists what goes into the
//! initramfs — the binaries under /usr/bin and the differential busybox
//! scripts (`user/scripts/*.sh`) under /etc/rse/scripts.
//!
//! The build is the one a person would type:
//!
//! ```text
//! RUSTFLAGS="-C target-feature=+crt-static" cargo build --release \
//!     --manifest-path user/Cargo.toml --target x86_64-unknown-linux-gnu
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

/// Target triple of the guest programs (the host's: they are ordinary
/// static Linux executables).
pub const TARGET: &str = "x86_64-unknown-linux-gnu";
/// Where the binaries go in the guest.
pub const GUEST_BIN_DIR: &str = "/usr/bin";
/// Where the differential scripts go in the guest.
pub const GUEST_SCRIPTS_DIR: &str = "/etc/rse/scripts";
/// The binaries `user/` builds.
pub const PROGRAMS: &[&str] = &["rsetest", "rsebench", "rsefuzz"];

/// `user/` in this checkout.
pub fn user_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(".."))
        .join("user")
}

/// Builds `user/` and returns (host path, guest path) of every file the
/// initramfs needs: `/usr/bin/rsetest` and `/etc/rse/scripts/NAME.sh`.
pub fn build_user_programs() -> Result<Vec<(PathBuf, String)>, String> {
    let dir = user_dir();
    let target_dir = dir.join("target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .arg("build")
        .arg("--release")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .arg("--target")
        .arg(TARGET)
        .arg("--target-dir")
        .arg(&target_dir)
        // Flags from an outer cargo (e.g. the kernel's) must not leak in:
        // CARGO_ENCODED_RUSTFLAGS would win over RUSTFLAGS.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .status()
        .map_err(|e| format!("{cargo} build (user/): {e}"))?;
    if !status.success() {
        return Err(format!("building user/ failed ({status})"));
    }
    let mut files = Vec::new();
    for name in PROGRAMS {
        let host = target_dir.join(TARGET).join("release").join(name);
        check_static(&host)?;
        files.push((host, format!("{GUEST_BIN_DIR}/{name}")));
    }
    files.extend(scripts()?);
    Ok(files)
}

/// (host path, guest path) of every `user/scripts/*.sh`, sorted by name.
pub fn scripts() -> Result<Vec<(PathBuf, String)>, String> {
    let dir = user_dir().join("scripts");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sh"))
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .map(|n| (dir.join(&n), format!("{GUEST_SCRIPTS_DIR}/{n}")))
        .collect())
}

/// Fails unless `path` is an x86_64 ELF without a PT_INTERP segment, i.e.
/// it needs no dynamic loader in the guest.
fn check_static(path: &Path) -> Result<(), String> {
    let elf = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = |why: &str| Err(format!("{}: {why}", path.display()));
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    };
    if elf.get(..5) != Some(b"\x7fELF\x02") || u16_at(18) != Some(62) {
        return bad("not an x86_64 ELF64 file");
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(32), u16_at(54), u16_at(56)) else {
        return bad("truncated ELF header");
    };
    for i in 0..phnum as usize {
        match u32_at(phoff as usize + i * phentsize as usize) {
            Some(3) => return bad("dynamically linked (has PT_INTERP); build with +crt-static"),
            Some(_) => {}
            None => return bad("truncated program headers"),
        }
    }
    Ok(())
}
