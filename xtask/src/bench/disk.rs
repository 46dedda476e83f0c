//! The storage rows' boot: one more boot per run and system, with a
//! virtio-blk disk holding a fresh copy of one ext4 image (made once by
//! the host's `mke2fs`, the same bytes for every boot of both kernels).
//! Its init is a script that mounts the disk at /mnt/disk (Linux first
//! loads its disk driver and ext4 from its own package with busybox
//! `insmod`) and then execs `rsebench`, which sees `disk` in its
//! bench.conf and runs only the `disk_*` rows. The root also holds
//! Debian's sqlite3 for the sqlite row.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::artifacts::{self, Addition};

/// The storage boot's init, on both kernels.
const INIT: &str = r#"#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
if [ -f /etc/rse/bench/modules ]; then
  # Linux: the disk's driver and ext4 are modules; /dev/vda comes from
  # devtmpfs (RSE OS makes its /dev nodes itself).
  mount -t proc proc /proc
  mount -t sysfs sys /sys
  mount -t devtmpfs dev /dev
  for m in $(cat /etc/rse/bench/modules); do insmod $m || echo "insmod $m failed"; done
fi
i=0
until [ -b /dev/vda ]; do
  i=$((i+1)); [ $i -gt 100 ] && { echo "BENCH-FAILED no /dev/vda"; exit 3; }; sleep 0.1
done
mkdir -p /mnt/disk
mount -t ext4 /dev/vda /mnt/disk || { echo "BENCH-FAILED mount /dev/vda"; exit 3; }
exec /usr/bin/rsebench
"#;

/// What the kernel command line names as init in this boot.
pub const INIT_PATH: &str = "/etc/rse/bench/disk-init";

/// Size of the file system: room for the 64 MiB data file, the O_DIRECT
/// copy, the fsync log and the database, with a journal (mke2fs's
/// default for this size) that the sequential write does not fill.
const IMAGE_SIZE: &str = "512M";

/// The two roots and the image every boot copies.
pub struct Prepared {
    pub rse_initrd: PathBuf,
    pub linux_initrd: PathBuf,
    template: PathBuf,
    dir: PathBuf,
}

/// Builds both initramfs images (the usual programs, Debian's sqlite3,
/// the init script and bench.conf; Linux's also its modules and their
/// list) and the template image.
pub fn prepare(quick: bool, rows: &[String], linux_version: &str) -> Result<Prepared, String> {
    let id = std::process::id();
    let dir = artifacts::out_dir().join(format!("bench-disk-{id}"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).map_err(|e| format!("{}: {e}", empty.display()))?;
    let template = dir.join("template.img");
    crate::disk_image::mke2fs(&empty, &template, IMAGE_SIZE)?;
    let conf = format!(
        "{}\ndisk /dev/vda /mnt/disk\n{}",
        if quick { "quick" } else { "full" },
        if rows.is_empty() {
            String::new()
        } else {
            format!("rows {}\n", rows.join(" "))
        }
    );
    let mut adds: Vec<Addition> = crate::userland::build_user_programs()?
        .into_iter()
        .map(|(host, guest)| Addition { host, guest })
        .collect();
    for (name, data, mode, guest) in [
        ("bench.conf", conf.as_bytes(), 0o644, "/etc/rse/bench.conf"),
        ("disk-init", INIT.as_bytes(), 0o755, INIT_PATH),
    ] {
        let host = dir.join(name);
        artifacts::write_with_mode(&host, data, mode)?;
        adds.push(Addition {
            host,
            guest: guest.into(),
        });
    }
    let pkgs = vec!["sqlite3".to_string()];
    let rse_initrd = artifacts::build_initramfs(
        None,
        &adds,
        &pkgs,
        &format!("initramfs-bench-disk-rse-{id}.cpio"),
    )?;
    let mut list = String::new();
    for m in super::linux::block_modules(linux_version) {
        let name = m
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let guest = format!("/lib/modules/{linux_version}/{name}");
        list += &format!("{guest}\n");
        adds.push(Addition { host: m, guest });
    }
    let list_file = dir.join("modules");
    std::fs::write(&list_file, list).map_err(|e| format!("{}: {e}", list_file.display()))?;
    adds.push(Addition {
        host: list_file,
        guest: "/etc/rse/bench/modules".into(),
    });
    let linux_initrd = artifacts::build_initramfs(
        None,
        &adds,
        &pkgs,
        &format!("initramfs-bench-disk-linux-{id}.cpio"),
    )?;
    Ok(Prepared {
        rse_initrd,
        linux_initrd,
        template,
        dir,
    })
}

impl Prepared {
    /// A fresh copy of the template for one boot (sparse, as made).
    pub fn fresh_image(&self, tag: &str) -> Result<PathBuf, String> {
        let img = self.dir.join(format!("disk-{tag}.img"));
        copy_sparse(&self.template, &img)?;
        Ok(img)
    }

    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.rse_initrd);
        let _ = std::fs::remove_file(&self.linux_initrd);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn copy_sparse(from: &Path, to: &Path) -> Result<(), String> {
    let st = Command::new("cp")
        .arg("--sparse=always")
        .arg(from)
        .arg(to)
        .status()
        .map_err(|e| format!("cp: {e}"))?;
    if !st.success() {
        return Err(format!("cp {} {} failed", from.display(), to.display()));
    }
    Ok(())
}
