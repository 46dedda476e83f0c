//! Memory-management logic that needs no hardware: per-torus physical
//! frame pools today; address-space bookkeeping (VMAs) next. The kernel
//! wires these to the page tables in `hal`.
#![no_std]

extern crate alloc;

pub mod frames;
pub mod vma;
