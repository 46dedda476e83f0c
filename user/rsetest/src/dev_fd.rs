//! /proc/self/fd and /dev/fd (bash's process substitution): the directory
//! lists the open descriptors; each entry is a symlink whose open(2)
//! makes a new open file for the same object (a pipe's end by access
//! mode, a regular file with its own offset); /dev/fd, /dev/stdin… are
//! symlinks into it.

use std::ffi::CString;

use crate::say;
use crate::util::{check, close, errname, errno, pipe};

fn open(path: &str, flags: i32) -> Result<i32, String> {
    let c = CString::new(path).unwrap();
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libc::open(c.as_ptr(), flags, 0o600) };
    if fd < 0 {
        return Err(format!("open {path}: {}", errname(errno())));
    }
    Ok(fd)
}

fn readlink(path: &str) -> Result<String, String> {
    std::fs::read_link(path)
        .map(|p| p.display().to_string())
        .map_err(|e| format!("readlink {path}: {e}"))
}

fn read_some(fd: i32) -> Vec<u8> {
    let mut b = [0u8; 64];
    // SAFETY: reading into a local buffer.
    let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), b.len()) };
    b[..n.max(0) as usize].to_vec()
}

fn write(fd: i32, data: &[u8]) -> isize {
    // SAFETY: writing from a local slice.
    unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) }
}

pub fn run(_: &[String]) -> Result<(), String> {
    check(
        readlink("/dev/fd")? == "/proc/self/fd",
        "/dev/fd is a symlink to /proc/self/fd",
    )?;
    for (i, name) in ["stdin", "stdout", "stderr"].iter().enumerate() {
        check(
            readlink(&format!("/dev/{name}"))? == format!("/proc/self/fd/{i}"),
            format!("/dev/{name} is a symlink to /proc/self/fd/{i}"),
        )?;
    }

    // A pipe reached through /dev/fd: the read end opened for reading,
    // and a write end opened for writing, are that pipe.
    let (r, w) = pipe()?;
    let r2 = open(&format!("/dev/fd/{r}"), libc::O_RDONLY)?;
    let w2 = open(&format!("/proc/self/fd/{w}"), libc::O_WRONLY)?;
    check(
        write(w2, b"via proc") == 8,
        "write through a reopened write end",
    )?;
    check(
        read_some(r2) == b"via proc",
        "read through a reopened read end sees it",
    )?;
    let target = readlink(&format!("/proc/self/fd/{r}"))?;
    check(
        target.starts_with("pipe:["),
        format!("readlink of a pipe's fd says pipe:[…] ({target})"),
    )?;
    let listed: Vec<String> = std::fs::read_dir("/dev/fd/")
        .map_err(|e| format!("readdir /dev/fd: {e}"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for fd in [0, 1, 2, r, w, r2, w2] {
        check(
            listed.contains(&fd.to_string()),
            format!("/dev/fd lists descriptor {fd} ({listed:?})"),
        )?;
    }
    let md = std::fs::symlink_metadata(format!("/proc/self/fd/{r}"))
        .map_err(|e| format!("lstat: {e}"))?;
    check(
        md.file_type().is_symlink(),
        "lstat of an fd entry: a symlink",
    )?;
    let md = std::fs::metadata(format!("/dev/fd/{r}")).map_err(|e| format!("stat: {e}"))?;
    use std::os::unix::fs::FileTypeExt;
    check(
        md.file_type().is_fifo(),
        "stat through it: the pipe (a FIFO)",
    )?;
    // Closing the original write ends: the reopened one keeps the pipe
    // open for writing; closing it too gives EOF.
    close(w);
    check(write(w2, b"x") == 1, "the reopened write end still writes")?;
    check(read_some(r) == b"x", "the original read end reads it")?;
    close(w2);
    check(
        read_some(r2).is_empty(),
        "EOF once every write end is closed",
    )?;
    close(r);
    close(r2);
    let closed = open(&format!("/dev/fd/{r}"), libc::O_RDONLY);
    check(
        closed.is_err(),
        "a closed descriptor's entry is gone (ENOENT)",
    )?;

    // A regular file: its own offset, and O_TRUNC truncates.
    let path = "/tmp/rsetest-dev-fd";
    std::fs::write(path, b"0123456789").map_err(|e| e.to_string())?;
    let f = open(path, libc::O_RDONLY)?;
    check(read_some(f).len() == 10, "read the file")?;
    let g = open(&format!("/dev/fd/{f}"), libc::O_RDONLY)?;
    check(
        read_some(g) == b"0123456789",
        "the reopened file starts at offset 0 (a new open file)",
    )?;
    let t = open(&format!("/dev/fd/{f}"), libc::O_WRONLY | libc::O_TRUNC)?;
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    check(len == 0, "O_TRUNC through /dev/fd truncates the file")?;
    for fd in [f, g, t] {
        close(fd);
    }
    let _ = std::fs::remove_file(path);
    say!("dev_fd done");
    Ok(())
}
