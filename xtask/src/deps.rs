//! Host packages the harness needs, installed with apt-get when missing
//! (as root), or named with the exact command to run otherwise.

use std::path::Path;
use std::process::Command;

/// A Debian package and a file that proves it is installed.
pub struct Package {
    pub name: &'static str,
    pub file: &'static str,
}

pub const QEMU: Package = Package {
    name: "qemu-system-x86",
    file: "/usr/bin/qemu-system-x86_64",
};
pub const BUSYBOX: Package = Package {
    name: "busybox-static",
    file: "/bin/busybox",
};
/// util-linux `script`: a pty for the scripted-terminal scenario.
pub const SCRIPT: Package = Package {
    name: "bsdutils",
    file: "/usr/bin/script",
};
pub const GRUB_PC_BIN: Package = Package {
    name: "grub-pc-bin",
    file: "/usr/lib/grub/i386-pc/modinfo.sh",
};
pub const GRUB_COMMON: Package = Package {
    name: "grub-common",
    file: "/usr/bin/grub-mkrescue",
};
pub const XORRISO: Package = Package {
    name: "xorriso",
    file: "/usr/bin/xorriso",
};
/// mke2fs, e2fsck, debugfs: ext4 disk images and the oracle for them.
pub const E2FSPROGS: Package = Package {
    name: "e2fsprogs",
    file: "/usr/sbin/mke2fs",
};
pub const MTOOLS: Package = Package {
    name: "mtools",
    file: "/usr/bin/mformat",
};

/// The host's HTTP client for the lighttpd scenarios.
pub const CURL: Package = Package {
    name: "curl",
    file: "/usr/bin/curl",
};

/// `ip` (network namespaces, bridges, taps) for `cargo xtask cluster`.
pub const IPROUTE2: Package = Package {
    name: "iproute2",
    file: "/usr/sbin/ip",
};

/// Whether xtask runs as root (apt-get may install and update).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// Makes sure every package is installed; returns an error naming the
/// command to run when it cannot install them itself.
pub fn ensure(pkgs: &[&Package]) -> Result<(), String> {
    let missing: Vec<&str> = pkgs
        .iter()
        .filter(|p| !Path::new(p.file).exists())
        .map(|p| p.name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        return Err(format!(
            "missing Debian packages; run: sudo apt-get install -y {list}"
        ));
    }
    eprintln!("xtask: installing missing Debian packages: {list}");
    let env = [("DEBIAN_FRONTEND", "noninteractive")];
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(&missing)
            .envs(env)
            .status()
    };
    let ok = matches!(install(), Ok(s) if s.success())
        || (Command::new("apt-get")
            .args(["update", "-qq"])
            .envs(env)
            .status()
            .is_ok()
            && matches!(install(), Ok(s) if s.success()));
    if ok {
        Ok(())
    } else {
        Err(format!("apt-get install -y {list} failed"))
    }
}
