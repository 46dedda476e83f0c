//! The braided-torus substrate (placeholder; see docs/braid.md).
#![no_std]
