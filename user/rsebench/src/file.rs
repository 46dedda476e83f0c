//! A small file on tmpfs (the initramfs root on both kernels): open, read
//! it whole, close.

use crate::{clock, sys, Outcome, Size};

pub fn open_read_close(size: Size) -> Outcome {
    let path = "/tmp/rsebench-small.txt";
    if std::fs::write(path, [b'x'; 100]).is_err() {
        return Outcome::Unsupported("cannot create /tmp/rsebench-small.txt".into());
    }
    let c = sys::cstr(path);
    let mut buf = [0u8; 256];
    let ns = clock::per_op(size.n(20_000), |_| {
        // SAFETY: c is a NUL-terminated path; buf is writable.
        unsafe {
            let fd = libc::open(c.as_ptr(), libc::O_RDONLY);
            if fd < 0 {
                sys::die("open");
            }
            if libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) != 100 {
                sys::die("read");
            }
            libc::close(fd);
        }
    });
    let _ = std::fs::remove_file(path);
    Outcome::NsPerOp(ns)
}
