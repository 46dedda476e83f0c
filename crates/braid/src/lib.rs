//! The braided-torus substrate: events, tori, projections, the braid ring,
//! verification, failure detection, reconstruction, migration and an
//! adaptive braid interval, plus a deterministic simulator with fault
//! injection. The protocol is specified in `docs/braid.md`.
//!
//! The crate is `no_std` + `alloc` and transport-agnostic: a torus emits
//! fixed-size byte records through a [`Transport`] and consumes them with
//! [`Torus::receive`]. The kernel runs it between its CPU tori; the host
//! benchmark (threads, `cargo xtask bench braid`) lives in xtask.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod ack;
pub mod chain;
pub mod codec;
pub mod event;
mod failure;
pub mod firehose;
pub mod interval;
pub mod lattice;
mod migration;
#[cfg(test)]
mod model;
pub mod placement;
pub mod projection;
pub mod queue;
mod receive;
pub mod replication;
pub mod ring;
pub mod roster;
pub mod sim;
pub mod suspicion;
pub mod table;
pub mod torus;
mod verify;

/// Largest number of tori in one ring (the view is a 64-bit mask).
pub const MAX_TORI: usize = 64;

pub use ack::Ack;
pub use codec::DecodeError;
pub use event::{Event, Time};
pub use lattice::{Coord, Lattice};
pub use projection::Projection;
pub use queue::EventQueue;
pub use replication::Note;
pub use ring::View;
pub use table::{Pid, ProcRecord, Slot, Table, TorusId};
pub use torus::{Config, Stats, Torus, Transport};
