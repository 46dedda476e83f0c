//! The current directory anywhere in a file system: chdir and fchdir
//! into nested directories, getcwd, relative paths and `openat` from a
//! directory descriptor, `..` up through the directory the file system
//! is mounted on, relative paths out into the root's other file systems
//! (/tmp, /proc), and a removed cwd (getcwd ENOENT, nothing created in
//! it). In /tmp, or in the directory given as the argument (an ext4
//! mount).

use std::ffi::CString;

use crate::util::{check, errname, errno};

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn getcwd() -> Result<String, i32> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: buf is writable for its length.
    let r = unsafe { libc::getcwd(buf.as_mut_ptr().cast(), buf.len()) };
    if r.is_null() {
        return Err(errno());
    }
    let n = buf.iter().position(|&b| b == 0).unwrap_or(0);
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn chdir(p: &str) -> Result<(), String> {
    let c = cstr(p);
    // SAFETY: a valid path string.
    if unsafe { libc::chdir(c.as_ptr()) } != 0 {
        return Err(format!("chdir {p}: {}", errname(errno())));
    }
    Ok(())
}

fn open_at(dirfd: i32, p: &str, flags: i32) -> Result<i32, String> {
    let c = cstr(p);
    // SAFETY: a valid path string.
    let fd = unsafe { libc::openat(dirfd, c.as_ptr(), flags | libc::O_CLOEXEC, 0o644) };
    if fd < 0 {
        return Err(format!("openat {p}: {}", errname(errno())));
    }
    Ok(fd)
}

fn read_fd(fd: i32) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: our descriptor.
    unsafe { libc::close(fd) };
    String::from_utf8_lossy(&buf[..n.max(0) as usize]).into_owned()
}

/// The parent of absolute path `p` ("/" for "/x").
fn parent(p: &str) -> String {
    match p.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => p[..i].into(),
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let dir = args.first().map_or("/tmp", String::as_str);
    chdir(dir)?;
    let base = getcwd().map_err(|e| format!("getcwd: {}", errname(e)))?;
    let _ = std::fs::remove_dir_all("rsetest-cwd");
    std::fs::create_dir_all("rsetest-cwd/a/b").map_err(|e| format!("mkdir: {e}"))?;
    chdir("rsetest-cwd/a/b")?;
    let deep = format!("{base}/rsetest-cwd/a/b");
    check(
        getcwd() == Ok(deep.clone()),
        format_args!("chdir to a nested directory: getcwd {deep}"),
    )?;
    std::fs::write("f", "in b\n").map_err(|e| format!("create f: {e}"))?;
    check(
        std::fs::read_to_string(format!("{deep}/f")).ok().as_deref() == Some("in b\n"),
        "a file created by a relative path is where the cwd is",
    )?;
    check(
        std::fs::read_to_string("../b/./f").ok().as_deref() == Some("in b\n"),
        "../b/./f from the cwd",
    )?;

    let a = open_at(libc::AT_FDCWD, "..", libc::O_RDONLY | libc::O_DIRECTORY)?;
    check(
        read_fd(open_at(a, "b/f", libc::O_RDONLY)?) == "in b\n",
        "openat from a directory descriptor",
    )?;
    // SAFETY: our descriptor.
    let r = unsafe { libc::fchdir(a) };
    check(r == 0, "fchdir")?;
    // SAFETY: our descriptor.
    unsafe { libc::close(a) };
    check(
        getcwd() == Ok(format!("{base}/rsetest-cwd/a")),
        "fchdir moved the cwd up one",
    )?;
    check(
        read_fd(open_at(libc::AT_FDCWD, "b/f", libc::O_RDONLY)?) == "in b\n",
        "a relative path after fchdir",
    )?;

    // Out of the directory's file system through `..` and back by name.
    chdir("b")?;
    let ups = "../".repeat(64);
    let out = format!("{ups}tmp/rsetest-cwd-out");
    std::fs::write(&out, "out\n").map_err(|e| format!("create {out}: {e}"))?;
    check(
        std::fs::read_to_string("/tmp/rsetest-cwd-out")
            .ok()
            .as_deref()
            == Some("out\n"),
        "a relative path up to / and down into /tmp",
    )?;
    let _ = std::fs::remove_file("/tmp/rsetest-cwd-out");
    let stat = std::fs::read_to_string(format!("{ups}proc/self/stat")).unwrap_or_default();
    check(
        stat.starts_with(&format!("{} ", std::process::id())),
        "a relative path up to / and down into /proc",
    )?;
    chdir(&base)?;
    chdir("..")?;
    check(
        getcwd() == Ok(parent(&base)),
        format_args!("`..` from {base} is {}", parent(&base)),
    )?;

    // A removed cwd: getcwd ENOENT, no new names in it, and it is freed
    // once the cwd moves on.
    chdir(&deep)?;
    std::fs::remove_file("f").map_err(|e| format!("unlink f: {e}"))?;
    std::fs::remove_dir(&deep).map_err(|e| format!("rmdir {deep}: {e}"))?;
    check(
        getcwd() == Err(libc::ENOENT),
        "getcwd in a removed directory: ENOENT",
    )?;
    let g = open_at(libc::AT_FDCWD, "g", libc::O_WRONLY | libc::O_CREAT);
    check(
        matches!(&g, Err(e) if e.ends_with("ENOENT")),
        format_args!("creating in a removed directory: ENOENT ({g:?})"),
    )?;
    chdir(&base)?;
    std::fs::remove_dir_all("rsetest-cwd").map_err(|e| format!("cleanup: {e}"))?;
    chdir("/")?;
    Ok(())
}
