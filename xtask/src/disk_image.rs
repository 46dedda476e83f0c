//! `cargo xtask image --disk OUT.img --size 64M [--root] [--pkg NAME]...
//! [--dir DIR]`: an ext4 disk image made by the host's `mke2fs -d` (no
//! root, no loop mount). With `--root` or `--pkg`, the image holds the
//! same root the initramfs would (busybox, the packages at their Debian
//! paths, merged /usr), which boots with `root=/dev/vda`; with `--dir`,
//! DIR's tree (on top of that root if both are given).

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{artifacts, deps};

/// Options of `image --disk`.
pub struct DiskOpts {
    pub out: PathBuf,
    /// Size as mke2fs takes it ("64M", "2G").
    pub size: String,
    pub pkgs: Vec<String>,
    /// The initramfs's root (busybox, /etc's accounts, /dev, /proc, /tmp…)
    /// even without packages (`--root`; `--pkg` implies it): a disk to
    /// boot with `root=/dev/vda`.
    pub root: bool,
    pub dir: Option<PathBuf>,
}

impl DiskOpts {
    /// Parses the arguments after `image`; None when `--disk` is absent
    /// (then `image` makes the GRUB ISO).
    pub fn parse(args: &[String]) -> Result<Option<DiskOpts>, String> {
        let mut out = None;
        let mut size = String::from("64M");
        let mut pkgs = Vec::new();
        let mut dir = None;
        let mut root = false;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
            match a.as_str() {
                "--disk" => out = Some(PathBuf::from(val()?)),
                "--size" => size = val()?,
                "--pkg" => pkgs.push(val()?),
                "--dir" => dir = Some(PathBuf::from(val()?)),
                "--root" => root = true,
                _ => return Err(format!("image: unknown option {a}")),
            }
        }
        match out {
            Some(out) => Ok(Some(DiskOpts {
                out,
                size,
                pkgs,
                root,
                dir,
            })),
            None if pkgs.is_empty() && dir.is_none() && !root => Ok(None),
            None => Err("image: --pkg and --dir need --disk OUT.img".into()),
        }
    }
}

/// Makes the image; returns its path.
pub fn make(o: &DiskOpts) -> Result<PathBuf, String> {
    deps::ensure(&[&deps::E2FSPROGS])?;
    let staging = artifacts::out_dir().join(format!("disk-staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    let r = fill(o, &staging).and_then(|()| mke2fs(&staging, &o.out, &o.size));
    let _ = std::fs::remove_dir_all(&staging);
    r.map(|()| o.out.clone())
}

fn fill(o: &DiskOpts, staging: &Path) -> Result<(), String> {
    if o.root || !o.pkgs.is_empty() {
        deps::ensure(&[&deps::BUSYBOX])?;
        let name = format!("disk-root-{}.cpio", std::process::id());
        let cpio = artifacts::build_initramfs(None, &[], &o.pkgs, &name)?;
        let data = std::fs::read(&cpio).map_err(|e| format!("{}: {e}", cpio.display()));
        let _ = std::fs::remove_file(&cpio);
        unpack_newc(&data?, staging)?;
    }
    if let Some(dir) = &o.dir {
        let st = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", dir.display()))
            .arg(staging)
            .status()
            .map_err(|e| format!("cp: {e}"))?;
        if !st.success() {
            return Err(format!("cp -a {} failed", dir.display()));
        }
    }
    Ok(())
}

/// `mke2fs -t ext4 -b 4096 -d DIR OUT SIZE` on a fresh file.
pub fn mke2fs(dir: &Path, out: &Path, size: &str) -> Result<(), String> {
    let _ = std::fs::remove_file(out);
    let o = Command::new(deps::E2FSPROGS.file)
        .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-L", "rse", "-d"])
        .arg(dir)
        .arg(out)
        .arg(size)
        .output()
        .map_err(|e| format!("mke2fs: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "mke2fs failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(())
}

/// Unpacks a cpio "newc" archive (what xtask's initramfs is) into `dest`:
/// directories, regular files and symlinks with their modes; device nodes
/// are skipped (the kernel makes /dev itself).
fn unpack_newc(data: &[u8], dest: &Path) -> Result<(), String> {
    let hex = |b: &[u8]| -> Result<u64, String> {
        u64::from_str_radix(std::str::from_utf8(b).map_err(|e| e.to_string())?, 16)
            .map_err(|e| format!("cpio header: {e}"))
    };
    let mut pos = 0;
    while pos + 110 <= data.len() {
        let h = &data[pos..pos + 110];
        if &h[..6] != b"070701" {
            return Err("cpio: bad magic".into());
        }
        let mode = hex(&h[14..22])? as u32;
        let size = hex(&h[54..62])? as usize;
        let namesize = hex(&h[94..102])? as usize;
        let name_start = pos + 110;
        let name = &data[name_start..name_start + namesize.saturating_sub(1)];
        let data_start = (name_start + namesize + 3) & !3;
        let body = &data[data_start..data_start + size];
        pos = (data_start + size + 3) & !3;
        let name = String::from_utf8_lossy(name).into_owned();
        if name == "TRAILER!!!" {
            break;
        }
        let rel = name.trim_start_matches('/');
        if rel.is_empty() || rel == "." {
            continue;
        }
        let path = dest.join(rel);
        let io = |e: std::io::Error| format!("{}: {e}", path.display());
        match mode & 0o170000 {
            0o040000 => {
                std::fs::create_dir_all(&path).map_err(io)?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(io)?;
            }
            0o100000 => {
                std::fs::write(&path, body).map_err(io)?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(io)?;
            }
            0o120000 => {
                let target = String::from_utf8_lossy(body).into_owned();
                let _ = std::fs::remove_file(&path);
                symlink(target, &path).map_err(io)?;
            }
            _ => {}
        }
    }
    Ok(())
}
