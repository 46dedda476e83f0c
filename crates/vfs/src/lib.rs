//! File system logic the kernel wires to syscalls, free of hardware: an
//! in-memory [`tmpfs`] with Linux path-walk and namespace semantics, a
//! [`cpio`] "newc" unpacker for the initramfs, the [`pipe`] buffer, and the
//! byte [`layout`]s of `struct stat`, `struct statx` and `linux_dirent64`.
//!
//! Everything here is `no_std` + `alloc` and tested on the host. There is no
//! clock and no credential source in the crate: the kernel passes the time
//! and the caller's ids in, so the same code runs under a simulator.
#![no_std]

extern crate alloc;

pub mod access;
pub mod cpio;
pub mod devnum;
pub mod file_type;
pub mod layout;
pub mod locks;
pub mod path;
pub mod pipe;
pub mod stat;
pub mod tmpfs;

pub use file_type::FileType;
pub use stat::{Stat, Timespec};
pub use tmpfs::{
    DirEntry, HeapPages, Ino, Opened, PageId, PageStore, Tmpfs, TmpfsConfig, Usage, Walked,
    MAX_HEAP_PER_INODE, MAX_HEAP_PER_PAGE, PAGE_SIZE, ROOT_INO,
};

/// `linux-raw-sys`'s `general` module: the constants and structs we mirror.
pub(crate) use abi::linux_raw_sys::general as lx;
