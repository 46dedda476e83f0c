//! Inode attributes as stat(2) reports them, independent of any byte layout
//! (see [`crate::layout`] for the Linux structs).

/// A point in time: seconds and nanoseconds since the Unix epoch, as in
/// `struct timespec`. The crate has no clock; the kernel supplies these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timespec {
    /// Seconds since 1970-01-01 00:00:00 UTC (may be negative).
    pub sec: i64,
    /// Nanoseconds, `0..1_000_000_000`.
    pub nsec: u32,
}

impl Timespec {
    /// A time `sec` seconds after the epoch.
    pub const fn from_secs(sec: i64) -> Timespec {
        Timespec { sec, nsec: 0 }
    }

    /// A time `ns` nanoseconds after the epoch.
    pub const fn from_nanos(ns: u64) -> Timespec {
        Timespec {
            sec: (ns / 1_000_000_000) as i64,
            nsec: (ns % 1_000_000_000) as u32,
        }
    }
}

/// The fields of Linux's `struct stat` (stat(2), inode(7)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// Device holding the file (the file system's id).
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Hard link count.
    pub nlink: u64,
    /// File type and permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number for character and block devices (see [`crate::devnum`]).
    pub rdev: u64,
    /// Size in bytes (symlinks: target length).
    pub size: i64,
    /// Preferred I/O size.
    pub blksize: i64,
    /// 512-byte blocks actually allocated (less than size/512 when sparse).
    pub blocks: i64,
    /// Last access.
    pub atime: Timespec,
    /// Last data modification.
    pub mtime: Timespec,
    /// Last status change.
    pub ctime: Timespec,
}
