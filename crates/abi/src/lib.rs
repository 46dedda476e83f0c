//! The Linux x86_64 ABI as RSE OS speaks it: errno values, syscall numbers,
//! struct layouts programs see, and (next) ELF loading and the initial
//! process stack. Constants come from `linux-raw-sys`, so they match Linux.
#![no_std]

extern crate alloc;

pub mod elf;
pub mod errno;
pub mod stack;

pub use errno::{Errno, KResult};
pub use linux_raw_sys;
