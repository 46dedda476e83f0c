//! 4 KiB random I/O on the ext4 disk's data file (through the kernel's
//! caches), and the latency of a 4 KiB append made durable with fsync.

use crate::disk::{self, Disk, Rng, BLOCK};
use crate::{clock, sys, Outcome, Size};

fn iops(ops: u64, ns: u64) -> Outcome {
    Outcome::Iops(ops as f64 / (ns.max(1) as f64 / 1e9))
}

/// Reads at random 4 KiB-aligned offsets of the data file, after a
/// remount: the first read of a block goes to the disk, a block read
/// again may be cached (the same offsets on both kernels).
pub fn read(size: Size, d: &Disk) -> Outcome {
    let path = d.data_file(size);
    let blocks = (disk::data_len(size) / BLOCK) as u64;
    d.remount();
    let fd = disk::open(&path, libc::O_RDONLY);
    let mut rng = Rng::new();
    let mut buf = vec![0u8; BLOCK];
    let n = size.n(4000);
    let t = clock::now_ns();
    for _ in 0..n {
        let off = (rng.below(blocks) * BLOCK as u64) as libc::off_t;
        // SAFETY: buf is writable for BLOCK bytes.
        if unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), BLOCK, off) } != BLOCK as isize {
            sys::die("pread");
        }
    }
    let ns = clock::now_ns() - t;
    sys::close(fd);
    iops(n, ns)
}

/// Overwrites at random 4 KiB-aligned offsets of the data file, then one
/// fsync; timed to fsync's return (writes the cache only absorbed are
/// not finished).
pub fn write(size: Size, d: &Disk) -> Outcome {
    let path = d.data_file(size);
    let blocks = (disk::data_len(size) / BLOCK) as u64;
    let fd = disk::open(&path, libc::O_WRONLY);
    let mut rng = Rng::new();
    let buf = disk::pattern(BLOCK);
    let n = size.n(4000);
    let t = clock::now_ns();
    for _ in 0..n {
        let off = (rng.below(blocks) * BLOCK as u64) as libc::off_t;
        // SAFETY: buf is valid for BLOCK bytes.
        if unsafe { libc::pwrite(fd, buf.as_ptr().cast(), BLOCK, off) } != BLOCK as isize {
            sys::die("pwrite");
        }
    }
    disk::fsync(fd);
    let ns = clock::now_ns() - t;
    sys::close(fd);
    iops(n, ns)
}

/// Append 4 KiB to a log file and fsync it: one durable record, what a
/// database's commit costs at least (the file grows, so every fsync
/// commits metadata too).
pub fn fsync_latency(size: Size, d: &Disk) -> Outcome {
    let path = d.path("fsync.log");
    let _ = std::fs::remove_file(&path);
    let fd = disk::open(
        &path,
        libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND,
    );
    let buf = disk::pattern(BLOCK);
    let ns = clock::per_op(size.n(200), |_| {
        sys::write_all(fd, &buf);
        disk::fsync(fd);
    });
    sys::close(fd);
    Outcome::NsPerOp(ns)
}
