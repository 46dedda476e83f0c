//! Extended attributes: the calls exist (GNU ls -l asks every file for
//! `security.selinux` and `system.posix_acl_access`, and prints ENOSYS as
//! an error). A file system either stores attributes (Linux's ext4, tmpfs)
//! or answers EOPNOTSUPP (RSE OS's tmpfs and /proc): both are accepted, as
//! long as set, get and list agree; the path and descriptor errors are
//! Linux's.

use std::ffi::CString;

use crate::say;
use crate::util::{check, errname, errno};

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

pub fn run(_: &[String]) -> Result<(), String> {
    let path = "/tmp/rsetest-xattr";
    std::fs::write(path, b"x").map_err(|e| e.to_string())?;
    let (p, name) = (c(path), c("user.rsetest"));
    let mut buf = [0u8; 64];
    // SAFETY: NUL-terminated strings and a local buffer.
    let r = unsafe {
        libc::lgetxattr(
            p.as_ptr(),
            c("security.selinux").as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let e = errno();
    check(
        r >= 0 || e == libc::ENODATA || e == libc::EOPNOTSUPP,
        format!(
            "lgetxattr(security.selinux): a value, ENODATA or EOPNOTSUPP ({})",
            errname(e)
        ),
    )?;
    // SAFETY: as above.
    let set = unsafe { libc::setxattr(p.as_ptr(), name.as_ptr(), b"v1".as_ptr().cast(), 2, 0) };
    let set_err = errno();
    // SAFETY: as above.
    let got = unsafe {
        libc::getxattr(
            p.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let get_err = errno();
    let mut list = [0u8; 256];
    // SAFETY: as above.
    let listed = unsafe { libc::listxattr(p.as_ptr(), list.as_mut_ptr().cast(), list.len()) };
    if set == 0 {
        check(
            got == 2 && &buf[..2] == b"v1",
            "a stored attribute reads back",
        )?;
        check(listed > 0, "listxattr lists it")?;
        // SAFETY: as above.
        unsafe { libc::removexattr(p.as_ptr(), name.as_ptr()) };
    } else {
        check(
            set_err == libc::EOPNOTSUPP,
            format!("setxattr refused: EOPNOTSUPP ({})", errname(set_err)),
        )?;
        check(
            got < 0 && get_err == libc::EOPNOTSUPP,
            format!("then getxattr: EOPNOTSUPP too ({})", errname(get_err)),
        )?;
        check(
            listed == 0,
            format!("and listxattr: an empty list ({listed})"),
        )?;
    }
    let missing = c("/tmp/rsetest-xattr-missing/x");
    // SAFETY: as above.
    let r = unsafe {
        libc::getxattr(
            missing.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    check(
        r < 0 && errno() == libc::ENOENT,
        format!("a missing path: ENOENT ({})", errname(errno())),
    )?;
    // SAFETY: a descriptor that is not open.
    let r = unsafe { libc::fgetxattr(999, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    check(
        r < 0 && errno() == libc::EBADF,
        format!("a closed descriptor: EBADF ({})", errname(errno())),
    )?;
    // SAFETY: as above.
    let r = unsafe {
        libc::lgetxattr(
            p.as_ptr(),
            std::ptr::null(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    check(
        r < 0 && errno() == libc::EFAULT,
        format!("a NULL name: EFAULT ({})", errname(errno())),
    )?;
    let _ = std::fs::remove_file(path);
    say!("xattr done");
    Ok(())
}
