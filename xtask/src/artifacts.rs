//! Building what QEMU boots: the kernel ELF, the initramfs and the ISO.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::initramfs::{Archive, TreeOpts};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Scratch directory for images and logs.
pub fn out_dir() -> PathBuf {
    let d = root().join("target/rse");
    let _ = std::fs::create_dir_all(&d);
    d
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Flags for the kernel only (DESIGN.md, "Facts verified"): they cannot go
/// in .cargo/config.toml because host tools share the target triple.
const KERNEL_RUSTFLAGS: &[&str] = &[
    "-Crelocation-model=static",
    "-Ccode-model=kernel",
    "-Cno-redzone=yes",
    "-Ctarget-feature=+crt-static",
    "-Cforce-frame-pointers=yes",
];

/// Builds the kernel (release, with symbols) and returns the ELF's path.
pub fn build_kernel() -> Result<PathBuf, String> {
    let target_dir = root().join("target/kernel");
    let build = build_name();
    let st = Command::new(cargo())
        .current_dir(root())
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "kernel",
            "--target",
            "x86_64-unknown-linux-gnu",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", KERNEL_RUSTFLAGS.join("\x1f"))
        .env("RSE_BUILD", &build)
        .env_remove("RUSTFLAGS")
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !st.success() {
        return Err("kernel build failed".into());
    }
    Ok(target_dir.join("x86_64-unknown-linux-gnu/release/kernel"))
}

/// `git ARGS` in the repository: its output, trimmed; None if it failed.
fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .current_dir(root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// The commit HEAD names, abbreviated ("" outside git): what a
/// benchmark table says it measured.
pub fn short_commit() -> String {
    git(&["rev-parse", "--short", "HEAD"]).unwrap_or_default()
}

/// The kernel's build name: the commit it was built from, `-dirty` when
/// the tree had changes (`unknown` outside git). Machines of a cluster
/// refuse each other's frames unless their names match.
fn build_name() -> String {
    let Some(commit) = git(&["rev-parse", "--short=10", "HEAD"]) else {
        return "unknown".into();
    };
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    }
}

/// A file or host tree the user asked to put into the initramfs
/// (`--add HOST[:GUEST]`).
#[derive(Clone, Debug)]
pub struct Addition {
    pub host: PathBuf,
    pub guest: String,
}

impl Addition {
    /// Parses `HOST[:GUEST]`; GUEST defaults to /mnt/<file name>.
    pub fn parse(s: &str) -> Result<Addition, String> {
        let (host, guest) = match s.split_once(':') {
            Some((h, g)) => (h, g.to_string()),
            None => {
                let name = Path::new(s)
                    .file_name()
                    .ok_or(format!("--add {s}: no file name"))?;
                (s, format!("/mnt/{}", name.to_string_lossy()))
            }
        };
        if !guest.starts_with('/') {
            return Err(format!("--add {s}: guest path must be absolute"));
        }
        Ok(Addition {
            host: PathBuf::from(host),
            guest,
        })
    }
}

/// Paths packages may not replace: the shell that runs `--exec` and init,
/// and the binary every busybox applet link names.
const KEPT_FROM_PACKAGES: &[&str] = &["/usr/bin/sh", "/usr/bin/busybox"];

/// Builds the initramfs: busybox with its applet links, the Debian
/// packages `pkgs` with their dependencies (see [`crate::debian`]), the
/// command to run (for `--exec`), and the user's additions, in that order
/// (a later one replaces an earlier file at the same path; `/bin/sh` and
/// `/bin/busybox` stay busybox's).
pub fn build_initramfs(
    exec: Option<&str>,
    additions: &[Addition],
    pkgs: &[String],
    name: &str,
) -> Result<PathBuf, String> {
    let mut a = Archive::default();
    for d in [
        "/dev", "/proc", "/mnt", "/etc", "/root", "/sys", "/run", "/var",
    ] {
        a.dir(d);
    }
    // World-writable with the sticky bit, as on every Linux system.
    for d in ["/tmp", "/var/tmp"] {
        a.dir_meta(d, crate::initramfs::Meta::root(0o1777));
    }
    // The same nodes RSE OS creates itself; Linux needs them in the archive.
    a.char_dev("/dev/console", 5, 1, 0o600);
    a.char_dev("/dev/null", 1, 3, 0o666);
    // The accounts of a Debian system (base-passwd's static ones):
    // busybox looks up `~root`, `id` and `ls -l` names here, daemons
    // such as lighttpd drop privileges to www-data.
    for (path, text) in crate::debian::base_files() {
        if path.starts_with("/etc/passwd") || path.starts_with("/etc/group") {
            a.file(path, text.as_bytes().to_vec(), 0o644);
        }
    }
    let busybox = std::fs::read(crate::deps::BUSYBOX.file).map_err(|e| format!("busybox: {e}"))?;
    a.file("/bin/busybox", busybox, 0o755);
    let applets = busybox_applets()?;
    for applet in &applets {
        if applet != "/bin/busybox" {
            a.symlink(applet, "/bin/busybox");
        }
    }
    add_packages(&mut a, pkgs, &applets)?;
    if let Some(cmd) = exec {
        a.file("/etc/rse/exec", cmd.as_bytes().to_vec(), 0o644);
    }
    for add in additions {
        let what = |e| format!("--add {}: {e}", add.host.display());
        let md = std::fs::metadata(&add.host).map_err(what)?;
        if md.is_dir() {
            let skip = |_: &str| false;
            let opts = TreeOpts {
                keep_owner: false,
                skip: &skip,
            };
            a.add_tree(&add.host, &add.guest, &opts)
                .map_err(|e| format!("--add {}: {e}", add.host.display()))?;
        } else {
            let data = std::fs::read(&add.host).map_err(what)?;
            a.file(&add.guest, data, 0o755);
        }
    }
    let path = out_dir().join(name);
    let bytes = a.to_bytes();
    if !pkgs.is_empty() {
        eprintln!(
            "xtask: initramfs {}: {:.1} MiB",
            path.display(),
            bytes.len() as f64 / (1 << 20) as f64
        );
    }
    std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Puts the Debian packages `pkgs` and their dependencies into `a` at
/// their Debian paths (documentation left out, see
/// [`crate::debian::stripped`]), then the files maintainer scripts would
/// have made (unless a package has them).
fn add_packages(a: &mut Archive, pkgs: &[String], applets: &[String]) -> Result<(), String> {
    if pkgs.is_empty() {
        return Ok(());
    }
    let unpacked = crate::debian::prepare(pkgs)?;
    let skip = |p: &str| KEPT_FROM_PACKAGES.contains(&p) || crate::debian::stripped(p);
    let opts = TreeOpts {
        keep_owner: crate::deps::is_root(),
        skip: &skip,
    };
    let mut replaced = Vec::new();
    let mut bytes = 0;
    for u in &unpacked {
        let (r, b) = a.add_tree(&u.tree, "/", &opts)?;
        replaced.extend(r);
        bytes += b;
    }
    for (path, text) in crate::debian::base_files() {
        if !a.contains(path) {
            a.file(path, text.as_bytes().to_vec(), 0o644);
        }
    }
    let applets: Vec<String> = applets
        .iter()
        .map(|p| crate::initramfs::canonical(p))
        .collect();
    let mut over: Vec<&str> = replaced
        .iter()
        .filter(|r| applets.contains(r))
        .map(|r| r.rsplit('/').next().unwrap_or(r))
        .collect();
    over.sort();
    over.dedup();
    eprintln!(
        "xtask: {} Debian packages ({} and dependencies): {:.1} MiB of files{}",
        unpacked.len(),
        pkgs.join(", "),
        bytes as f64 / (1 << 20) as f64,
        if over.is_empty() {
            String::new()
        } else {
            format!("; package files replace busybox's {}", over.join(" "))
        }
    );
    Ok(())
}

/// Applet paths from `busybox --list-full` (e.g. "bin/ls", "usr/bin/awk").
fn busybox_applets() -> Result<Vec<String>, String> {
    let out = Command::new(crate::deps::BUSYBOX.file)
        .arg("--list-full")
        .output()
        .map_err(|e| format!("busybox --list-full: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| format!("/{l}"))
        .collect())
}

/// Builds a GRUB rescue ISO that boots the kernel with Multiboot2.
pub fn build_iso(
    kernel: &Path,
    initrd: Option<&Path>,
    cmdline: &str,
    name: &str,
) -> Result<PathBuf, String> {
    crate::deps::ensure(&[
        &crate::deps::GRUB_PC_BIN,
        &crate::deps::GRUB_COMMON,
        &crate::deps::XORRISO,
        &crate::deps::MTOOLS,
    ])?;
    let dir = out_dir().join(format!("{name}.d"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("boot/grub")).map_err(|e| e.to_string())?;
    std::fs::copy(kernel, dir.join("boot/kernel")).map_err(|e| e.to_string())?;
    let mut cfg = format!(
        "set timeout=0\nset default=0\nmenuentry \"RSE OS\" {{\n  multiboot2 /boot/kernel {cmdline}\n"
    );
    if let Some(i) = initrd {
        std::fs::copy(i, dir.join("boot/initramfs.cpio")).map_err(|e| e.to_string())?;
        cfg.push_str("  module2 /boot/initramfs.cpio initramfs\n");
    }
    cfg.push_str("  boot\n}\n");
    std::fs::write(dir.join("boot/grub/grub.cfg"), cfg).map_err(|e| e.to_string())?;
    let iso = out_dir().join(name);
    let out = Command::new("grub-mkrescue")
        .args(["-o"])
        .arg(&iso)
        .arg(&dir)
        .output()
        .map_err(|e| format!("grub-mkrescue: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "grub-mkrescue failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(iso)
}

/// Writes `data` to `path` with permission bits `mode` (scenario inputs:
/// scripts, stand-in binaries).
pub fn write_with_mode(path: &Path, data: &[u8], mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, data).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

/// `len` bytes of xorshift64 output from `seed`: file contents for tests
/// and benchmarks that no compression or short pattern can fake, the same
/// for the same seed.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
