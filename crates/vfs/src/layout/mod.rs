//! The byte layouts user space sees: `struct stat`, `struct statx`,
//! `struct statfs` and `linux_dirent64` for x86_64, little-endian.
//!
//! Offsets come from `linux-raw-sys`'s struct definitions via `offset_of!`,
//! so they match the C headers by construction; we never cast a struct to
//! bytes (no unsafe), we place each field.

mod dirent;
mod stat;
mod statfs;
mod statx;

pub use dirent::{dirent64_reclen, fill_getdents64, DirentWriter};
pub use stat::{encode_stat, STAT_SIZE};
pub use statfs::{encode_statfs, encode_statfs_info, StatfsInfo, STATFS_SIZE};
pub use statx::{encode_statx, STATX_SIZE};

/// Writes `bytes` at `off`: every caller passes an offset inside the struct.
fn put(buf: &mut [u8], off: usize, bytes: &[u8]) {
    buf[off..off + bytes.len()].copy_from_slice(bytes);
}
