//! The Linux side of the comparison: Debian's own kernel for this release
//! (the package `linux-image-amd64` depends on), fetched with
//! `apt-get download` and unpacked with `dpkg-deb` (its vmlinuz and the
//! modules of its virtio-net and virtio-blk drivers and of ext4); no root
//! needed unless the package lists are missing.

use std::path::PathBuf;
use std::process::Command;

use crate::artifacts;

/// Path of the vmlinuz, downloading and unpacking it on first use.
pub fn kernel() -> Result<(PathBuf, String), String> {
    let dir = artifacts::out_dir().join("linux");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let package = image_package()?;
    let version = package.trim_start_matches("linux-image-").to_string();
    let vmlinuz = dir.join(format!("boot/vmlinuz-{version}"));
    if vmlinuz.exists()
        && modules(&version)
            .iter()
            .chain(&block_modules(&version))
            .all(|m| m.exists())
    {
        return Ok((vmlinuz, version));
    }
    eprintln!("xtask: fetching {package} (Debian's kernel) for the comparison");
    let download = || {
        Command::new("apt-get")
            .args(["download", "-qq", &package])
            .current_dir(&dir)
            .status()
    };
    if !matches!(download(), Ok(s) if s.success()) {
        // Fresh machines may lack package lists; refresh them once (root).
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        if !matches!(download(), Ok(s) if s.success()) {
            return Err(format!("apt-get download {package} failed"));
        }
    }
    let deb = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&package))
                && p.extension().is_some_and(|x| x == "deb")
        })
        .ok_or(format!("no {package}*.deb after apt-get download"))?;
    let st = Command::new("sh")
        .arg("-c")
        .arg("deb=$1; shift; dpkg-deb --fsys-tarfile \"$deb\" | tar -x ./boot/ \"$@\"")
        .arg("sh")
        .arg(&deb)
        .args(
            MODULES
                .iter()
                .chain(BLOCK_MODULES.iter().filter(|m| !MODULES.contains(m)))
                .map(|m| format!("./lib/modules/{version}/kernel/{m}")),
        )
        .current_dir(&dir)
        .status()
        .map_err(|e| format!("dpkg-deb: {e}"))?;
    if !st.success() || !vmlinuz.exists() {
        return Err(format!(
            "unpacking {} gave no {}",
            deb.display(),
            vmlinuz.display()
        ));
    }
    let _ = std::fs::remove_file(&deb);
    Ok((vmlinuz, version))
}

/// The modules a Linux guest loads for its virtio-net NIC on `-M pc`
/// (Debian builds them as modules), in load order, under
/// `lib/modules/VERSION/kernel/`.
const MODULES: &[&str] = &[
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
];

/// The modules a Linux guest loads to mount an ext4 file system on a
/// virtio-blk disk on `-M pc`, in load order (each after what
/// `modinfo -F depends` names for it: virtio_blk needs virtio and
/// virtio_ring, ext4 jbd2, mbcache and crc16). ext4 and jbd2 ask the
/// crypto API for "crc32c" (metadata_csum, which mke2fs turns on) and
/// cannot load it themselves without modprobe: crc32c-intel is what a
/// Debian system would load on this CPU (SSE4.2), crc32c_generic the
/// fallback.
const BLOCK_MODULES: &[&str] = &[
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "drivers/block/virtio_blk.ko",
    "crypto/crc32c_generic.ko",
    "arch/x86/crypto/crc32c-intel.ko",
    "lib/crc16.ko",
    "fs/mbcache.ko",
    "fs/jbd2/jbd2.ko",
    "fs/ext4/ext4.ko",
];

/// The host paths of [`MODULES`] for kernel `version` (unpacked by
/// [`kernel`]), in load order.
pub fn modules(version: &str) -> Vec<PathBuf> {
    paths(version, MODULES)
}

/// The host paths of [`BLOCK_MODULES`], in load order.
pub fn block_modules(version: &str) -> Vec<PathBuf> {
    paths(version, BLOCK_MODULES)
}

fn paths(version: &str, list: &[&str]) -> Vec<PathBuf> {
    let dir = artifacts::out_dir().join(format!("linux/lib/modules/{version}/kernel"));
    list.iter().map(|m| dir.join(m)).collect()
}

/// `linux-image-6.1.0-NN-amd64`: what the metapackage depends on.
fn image_package() -> Result<String, String> {
    let query = || {
        let out = Command::new("apt-cache")
            .args(["depends", "linux-image-amd64"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .find(|p| p.starts_with("linux-image-"))
            .map(str::to_string)
    };
    if let Some(p) = query() {
        return Ok(p);
    }
    // Fresh machines may lack package lists (needs root).
    let _ = Command::new("apt-get").args(["update", "-qq"]).status();
    query().ok_or("apt-cache knows no linux-image-amd64 (is this Debian?)".into())
}
