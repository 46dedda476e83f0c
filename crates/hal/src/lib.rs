//! The hardware layer of RSE OS for x86_64: the only crate with `unsafe`.
//!
//! It owns everything that touches the machine directly: the boot entry
//! (PVH and Multiboot2), GDT/TSS, the IDT and trap entry stubs, page tables,
//! port I/O, the serial port, the local APIC and timers, the kernel heap and
//! the raw memory routines the compiler needs. It knows nothing of
//! processes, files or tori: the kernel builds those on top of the safe
//! interfaces exported here.
//!
//! Boot order (driven by [`boot`]): 32-bit entry → long mode → `hal_start64`
//! (serial, TSC calibration, GDT/IDT, kernel page tables, heap) → the
//! kernel's entry function registered with [`kernel_entry!`].
#![no_std]

extern crate alloc;

pub mod addrspace;
pub mod apic;
pub mod boot;
pub mod context;
pub mod cpu;
pub mod current;
pub mod dma;
pub mod exit;
pub mod fpu;
pub mod gdt;
pub mod guard;
pub mod heap;
pub mod idt;
pub mod mem;
pub mod paging;
pub mod percpu;
pub mod pic;
pub mod probe;
pub mod rtc;
pub mod serial;
pub mod smp;
pub mod syscall;
pub mod time;
pub mod tlb;
pub mod virtio;
pub mod virtio_blk;
pub mod virtio_net;
pub mod virtio_offload;
