//! Sockets. `socket.rs` is the protocol-family interface every family
//! implements (and the registry `socket(2)` picks a family from), with
//! what all families share: ancillary data, credentials, flags.
//! `mem.rs` bounds the kernel memory sockets hold for users. `unix/` is
//! AF_UNIX. AF_INET plugs in as one more [`socket::Family`] entry; the
//! syscall layer (`syscall/socket.rs`) knows no family.

pub mod mem;
pub mod socket;
pub mod unix;
