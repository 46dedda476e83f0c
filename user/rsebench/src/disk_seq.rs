//! Sequential throughput on the ext4 disk, 1 MiB per call: through the
//! kernel's caches (write + fsync; read after a remount, cold; read
//! again, warm) and with O_DIRECT where the kernel does direct I/O.

use crate::disk::{self, Aligned, Disk, CHUNK};
use crate::{clock, sys, Outcome, Size};

fn mbps(bytes: usize, ns: u64) -> Outcome {
    Outcome::MBps(bytes as f64 / 1e6 / (ns.max(1) as f64 / 1e9))
}

/// A new file, written whole and fsync'ed: timed from the first write to
/// fsync's return, so the cache does not hide the disk.
pub fn write(size: Size, d: &Disk) -> Outcome {
    let path = d.path("seq.bin");
    let _ = std::fs::remove_file(&path);
    let len = disk::data_len(size);
    let buf = disk::pattern(CHUNK);
    let fd = disk::open(&path, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC);
    let t = clock::now_ns();
    for _ in 0..len / CHUNK {
        sys::write_all(fd, &buf);
    }
    disk::fsync(fd);
    let ns = clock::now_ns() - t;
    sys::close(fd);
    mbps(len, ns)
}

fn read_all(path: &str, expect: usize) -> u64 {
    let fd = disk::open(path, libc::O_RDONLY);
    let mut buf = vec![0u8; CHUNK];
    let t = clock::now_ns();
    if !(0..expect / CHUNK).all(|_| sys::read_exact(fd, &mut buf)) {
        sys::die("short read");
    }
    let ns = clock::now_ns() - t;
    sys::close(fd);
    ns
}

/// The file read after a remount: every byte comes from the disk.
pub fn read_cold(size: Size, d: &Disk) -> Outcome {
    let path = d.data_file(size);
    d.remount();
    let len = disk::data_len(size);
    mbps(len, read_all(&path, len))
}

/// The file read twice; the second read is timed (whatever the kernel
/// kept of it after the first).
pub fn read_warm(size: Size, d: &Disk) -> Outcome {
    let path = d.data_file(size);
    let len = disk::data_len(size);
    read_all(&path, len);
    mbps(len, read_all(&path, len))
}

/// Whether the kernel does direct I/O on this file system: Linux refuses
/// an O_DIRECT read into a buffer not aligned to the device's logical
/// block (EINVAL); a kernel that accepts it is copying through a cache
/// whatever the flag says, and its "direct" figure would be a lie.
fn direct_refusal(d: &Disk, size: Size) -> Option<String> {
    let path = d.data_file(size);
    let c = sys::cstr(&path);
    // SAFETY: c is NUL-terminated.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECT) };
    if fd < 0 {
        return Some(format!("open(O_DIRECT) errno {}", sys::errno()));
    }
    let mut buf = Aligned::new(2 * disk::BLOCK);
    // SAFETY: ptr+1 .. ptr+1+BLOCK lies inside the 2-block buffer.
    let n = unsafe { libc::pread(fd, buf.as_mut_ptr().add(1).cast(), disk::BLOCK, 0) };
    let errno = sys::errno();
    sys::close(fd);
    match n {
        n if n < 0 && errno == libc::EINVAL => None,
        n if n < 0 => Some(format!("O_DIRECT read errno {errno}")),
        _ => {
            Some("O_DIRECT accepted but ignored (a misaligned read succeeds: no direct I/O)".into())
        }
    }
}

/// A new file written with O_DIRECT, then fsync'ed (the new blocks'
/// allocation is metadata).
pub fn write_direct(size: Size, d: &Disk) -> Outcome {
    if let Some(why) = direct_refusal(d, size) {
        return Outcome::Unsupported(why);
    }
    let path = d.path("direct.bin");
    let _ = std::fs::remove_file(&path);
    let len = disk::data_len(size);
    let mut buf = Aligned::new(CHUNK);
    let src = disk::pattern(CHUNK);
    // SAFETY: buf holds CHUNK bytes.
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), buf.as_mut_ptr(), CHUNK) };
    let fd = disk::open(
        &path,
        libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_DIRECT,
    );
    let t = clock::now_ns();
    for _ in 0..len / CHUNK {
        // SAFETY: buf is valid for CHUNK bytes.
        if unsafe { libc::write(fd, buf.as_mut_ptr().cast(), CHUNK) } != CHUNK as isize {
            sys::die("O_DIRECT write");
        }
    }
    disk::fsync(fd);
    let ns = clock::now_ns() - t;
    sys::close(fd);
    mbps(len, ns)
}

/// The data file read with O_DIRECT (no remount needed: no cache).
pub fn read_direct(size: Size, d: &Disk) -> Outcome {
    if let Some(why) = direct_refusal(d, size) {
        return Outcome::Unsupported(why);
    }
    let path = d.data_file(size);
    let len = disk::data_len(size);
    let mut buf = Aligned::new(CHUNK);
    let fd = disk::open(&path, libc::O_RDONLY | libc::O_DIRECT);
    let t = clock::now_ns();
    for _ in 0..len / CHUNK {
        // SAFETY: buf is writable for CHUNK bytes.
        if unsafe { libc::read(fd, buf.as_mut_ptr().cast(), CHUNK) } != CHUNK as isize {
            sys::die("O_DIRECT read");
        }
    }
    let ns = clock::now_ns() - t;
    sys::close(fd);
    mbps(len, ns)
}
