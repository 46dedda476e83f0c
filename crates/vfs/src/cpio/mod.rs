//! Unpacking a cpio "newc" archive into a tmpfs, as Linux unpacks the
//! initramfs (Documentation/driver-api/early-userspace/buffer-format.rst,
//! init/initramfs.c). The archive comes from outside the kernel's trust, so
//! every length is checked before use and malformed input is an error,
//! never a panic or a huge allocation.

mod header;
mod unpack;

pub use header::{Header, HEADER_LEN};
pub use unpack::{unpack, UnpackStats};
