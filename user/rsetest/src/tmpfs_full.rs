//! Filling /tmp is an error for the filler, not a crash of the kernel:
//! a file grows until write(2) fails with ENOSPC, then symlinks with
//! 4000-byte targets are made until symlink(2) does (the size or the inode
//! limit, whichever comes first); the directory still lists in full, stats
//! and removes, and writing works again. statfs reports finite limits,
//! and usage that goes back down after the removal.
//!
//! `rsetest tmpfs_full [DIR [MiB]]`: DIR defaults to /tmp, and at most MiB
//! (default 2048) are written in each phase, so a host whose /tmp is a
//! disk is not filled.

use std::ffi::CString;

use crate::say;
use crate::util::{check, errname, errno};

const CHUNK: usize = 1 << 20;
const TARGET_LEN: usize = 4000;
/// Most symlinks made, whatever the limits (a disk-backed /tmp has none).
const MAX_LINKS: usize = 200_000;

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL in paths")
}

fn statfs(path: &str) -> Result<libc::statfs, String> {
    // SAFETY: an all-zero statfs is valid; the kernel fills it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and out pointer.
    if unsafe { libc::statfs(c(path).as_ptr(), &mut st) } != 0 {
        return Err(format!("statfs {path}: {}", errname(errno())));
    }
    Ok(st)
}

fn used_mib(st: &libc::statfs) -> u64 {
    ((st.f_blocks - st.f_bfree) * st.f_bsize as u64) >> 20
}

/// Writes 1 MiB chunks to `path` until an error or `cap` bytes: (bytes
/// written, the error or 0).
fn fill_file(path: &str, cap: u64) -> Result<(u64, i32), String> {
    // SAFETY: valid path.
    let fd = unsafe {
        libc::open(
            c(path).as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
            0o644,
        )
    };
    if fd < 0 {
        return Err(format!("open {path}: {}", errname(errno())));
    }
    let buf = vec![0x5au8; CHUNK];
    let mut total = 0u64;
    let err = loop {
        if total >= cap {
            break 0;
        }
        // SAFETY: buf is valid for CHUNK bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), CHUNK) };
        if n < 0 {
            break errno();
        }
        total += n as u64;
    };
    // SAFETY: our descriptor.
    unsafe { libc::close(fd) };
    Ok((total, err))
}

fn unlink(path: &str) -> Result<(), String> {
    // SAFETY: valid path.
    if unsafe { libc::unlink(c(path).as_ptr()) } != 0 {
        return Err(format!("unlink {path}: {}", errname(errno())));
    }
    Ok(())
}

pub fn run(args: &[String]) -> Result<(), String> {
    let base = args.first().map_or("/tmp", String::as_str);
    let cap_mib: u64 = match args.get(1) {
        Some(a) => a.parse().map_err(|_| format!("{a}: not a number of MiB"))?,
        None => 2048,
    };
    let cap = cap_mib << 20;
    let dir = format!("{base}/tmpfs_full.{}", std::process::id());
    std::fs::create_dir(&dir).map_err(|e| format!("mkdir {dir}: {e}"))?;

    let st = statfs(&dir)?;
    let size_mib = (st.f_blocks * st.f_bsize as u64) >> 20;
    say!(
        "{base}: {size_mib} MiB, {} inodes, {} MiB and {} inodes in use",
        st.f_files,
        used_mib(&st),
        st.f_files - st.f_ffree
    );
    check(
        size_mib > 0 && st.f_blocks < (1 << 40) && st.f_files < (1 << 40),
        "statfs reports a finite size and inode limit",
    )?;
    let used_before = used_mib(&st);

    // A file grows until the file system is full.
    let big = format!("{dir}/big");
    let (written, err) = fill_file(&big, cap)?;
    say!(
        "wrote {} MiB, then {}",
        written >> 20,
        if err == 0 {
            "stopped at the cap".into()
        } else {
            errname(err)
        }
    );
    check(
        err == libc::ENOSPC || err == 0,
        "a growing file ends with ENOSPC",
    )?;
    let meta = std::fs::metadata(&big).map_err(|e| format!("stat {big}: {e}"))?;
    check(meta.len() == written, "its size is what was written")?;
    unlink(&big)?;

    // Symlinks with long targets until the size or inode limit.
    let target: String = "t".repeat(TARGET_LEN);
    let ctarget = c(&target);
    let mut made = 0usize;
    let err = loop {
        if made >= MAX_LINKS || (made as u64 + 1) * 4096 > cap {
            break 0;
        }
        // Long names: they cost kernel memory too.
        let p = c(&format!("{dir}/link-{made:06}-{}", "n".repeat(180)));
        // SAFETY: valid paths.
        if unsafe { libc::symlink(ctarget.as_ptr(), p.as_ptr()) } != 0 {
            break errno();
        }
        made += 1;
    };
    say!(
        "made {made} symlinks, then {}",
        if err == 0 {
            "stopped at the cap".into()
        } else {
            errname(err)
        }
    );
    check(err == libc::ENOSPC || err == 0, "symlink ends with ENOSPC")?;
    check(made > 0, "some symlinks were made")?;
    let full = statfs(&dir)?;
    say!(
        "full: {} MiB and {} inodes in use",
        used_mib(&full),
        full.f_files - full.f_ffree
    );

    // Listing the full directory (what used to crash the kernel).
    let mut listed = 0usize;
    for e in std::fs::read_dir(&dir).map_err(|e| format!("opendir {dir}: {e}"))? {
        let e = e.map_err(|e| format!("readdir {dir}: {e}"))?;
        if e.file_name().to_string_lossy().starts_with("link-") {
            listed += 1;
        }
    }
    check(
        listed == made,
        format!("readdir lists all {made} symlinks ({listed})"),
    )?;
    let last = format!("{dir}/link-{:06}-{}", made - 1, "n".repeat(180));
    let read = std::fs::read_link(&last).map_err(|e| format!("readlink {last}: {e}"))?;
    check(
        read.as_os_str().len() == TARGET_LEN,
        "the last symlink reads back whole",
    )?;
    let lst = std::fs::symlink_metadata(&last).map_err(|e| format!("lstat {last}: {e}"))?;
    check(
        lst.len() == TARGET_LEN as u64,
        "lstat gives the target's length",
    )?;

    for i in 0..made {
        unlink(&format!("{dir}/link-{i:06}-{}", "n".repeat(180)))?;
    }
    let after = statfs(&dir)?;
    say!("after removal: {} MiB in use", used_mib(&after));
    check(
        used_mib(&after) <= used_before + 1,
        "removing everything gives the space back",
    )?;

    // And the file system works again.
    let again = format!("{dir}/again");
    let (n, err) = fill_file(&again, 4 * CHUNK as u64)?;
    check(
        n == 4 * CHUNK as u64 && err == 0,
        "4 MiB can be written again",
    )?;
    let data = std::fs::read(&again).map_err(|e| format!("read {again}: {e}"))?;
    check(
        data.len() == 4 * CHUNK && data.iter().all(|&b| b == 0x5a),
        "and read back",
    )?;
    unlink(&again)?;
    std::fs::remove_dir(&dir).map_err(|e| format!("rmdir {dir}: {e}"))?;
    Ok(())
}
