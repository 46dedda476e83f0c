//! A virtio-blk device with several requests in flight, completed in any
//! order, by whoever looks at the used ring first.
//!
//! `virtio-drivers`' non-blocking block API (`read_blocks_nb`,
//! `complete_read_blocks`, …) leaves the request header, the status byte
//! and the data buffer borrowed by the device until the request completes,
//! through `unsafe` functions. This wrapper keeps header and status in
//! slots it owns, and lends the device a caller's data buffer only inside
//! [`run`], which returns once every request it submitted has completed:
//! the caller's borrow outlives the device's use whatever its [`Waiter`]
//! does (a waiter that returns early only makes `run` look again).
//!
//! Data buffers must lie in the kernel heap ([`crate::heap::contains`]):
//! one physically contiguous range of the direct map, so `DmaHal::share`
//! hands the device the buffer itself, no bounce buffer in between.
//!
//! The requests themselves are made here, on `virtio-drivers`'
//! `VirtQueue` and `Transport`, not through its `VirtIOBlk`: that one
//! has 16 queue entries and notifies the device once per request, and
//! under QEMU a notify is an exit in which the device takes the one
//! request (random 4 KiB writes spent a sixth of their busy time there).
//! Here a batch of requests is queued, then the device is notified once
//! (when it asks to be: VIRTIO_RING_F_EVENT_IDX), with [`QUEUE_SIZE`]
//! entries, each request one indirect descriptor.

use alloc::boxed::Box;
use alloc::vec::Vec;
use spin::Mutex;
use virtio_drivers::device::blk::SECTOR_SIZE;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::Transport;
use virtio_drivers::Error;

use crate::dma::DmaHal;

/// Entries of the request queue (a power of two; QEMU's virtio-blk
/// offers 256).
const QUEUE_SIZE: usize = 128;
/// The request queue's index.
const QUEUE: u16 = 0;

bitflags::bitflags! {
    /// The feature bits this driver negotiates (virtio 1.2, 5.2.3).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Features: u64 {
        const RO = 1 << 5;
        const FLUSH = 1 << 9;
        const RING_INDIRECT_DESC = 1 << 28;
        const RING_EVENT_IDX = 1 << 29;
        const VERSION_1 = 1 << 32;
    }
}

/// VIRTIO_BLK_T_IN, _OUT, _FLUSH.
const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
/// VIRTIO_BLK_S_OK.
const S_OK: u8 = 0;

/// A request's header and the status byte the device writes back
/// (`struct virtio_blk_req`, without the data between them).
#[derive(Default)]
struct Cmd {
    /// type (le32), reserved (le32), sector (le64).
    hdr: [u8; 16],
    status: u8,
}

impl Cmd {
    fn new(type_: u32, sector: u64) -> Cmd {
        let mut hdr = [0u8; 16];
        hdr[..4].copy_from_slice(&type_.to_le_bytes());
        hdr[8..].copy_from_slice(&sector.to_le_bytes());
        Cmd { hdr, status: 0xff }
    }

    /// The header as the device reads it, and the status byte it
    /// writes: the two parts of the command it is lent.
    fn parts(&mut self) -> (&[u8], &mut [u8]) {
        (&self.hdr, core::slice::from_mut(&mut self.status))
    }
}

/// What a request does with its buffer.
pub enum Op<'a> {
    /// Fill it from the disk.
    Read(&'a mut [u8]),
    /// Write it to the disk.
    Write(&'a [u8]),
}

/// One request: whole sectors from `sector`, as many as the buffer holds
/// (a non-zero multiple of 512 bytes, in the heap).
pub struct Request<'a> {
    /// The first sector.
    pub sector: u64,
    /// Read or write, with the buffer.
    pub op: Op<'a>,
}

/// How a caller of [`run`] or [`flush`] waits for the device.
pub trait Waiter {
    /// Waits until `ready()` may be true: sleeps until a completion wakes
    /// the caller, or just returns (polling). Returning early is harmless.
    fn wait(&mut self, ready: &dyn Fn() -> bool);
    /// The caller took completions from the device (other callers'
    /// requests, slots they wait for, the drain a flush waits for) or
    /// ended a flush that held their submissions back: wake them.
    fn others_completed(&mut self);
    /// Whether [`Waiter::wait`] gives the CPU away. A caller that keeps it
    /// is never made to wait for another caller (who might need that CPU
    /// to go on), only for the device.
    fn sleeps(&self) -> bool;
}

/// A request in flight: header and status the device writes, and the
/// caller's buffer as it was lent.
struct Slot {
    /// The request's id (0: the slot is free).
    id: u64,
    token: u16,
    cmd: Cmd,
    buf: *mut u8,
    len: usize,
    write: bool,
}

/// A virtio-blk device and its requests in flight.
pub struct BlkQueue<T: Transport> {
    transport: T,
    queue: VirtQueue<DmaHal, QUEUE_SIZE>,
    features: Features,
    /// Size in sectors.
    capacity: u64,
    /// The flush command's header and status (in the heap: lent to the
    /// device as one physical range).
    flush_cmd: Box<Cmd>,
    /// One per queue entry. Boxed: their addresses are the device's for
    /// as long as a request is in flight, whatever moves the queue.
    slots: Box<[Slot]>,
    inflight: usize,
    /// Completed requests (id, succeeded) not yet taken by their callers.
    /// They do not hold slots: a poller must never wait for a sleeper to
    /// run and take its completions (on the poller's own CPU it could not).
    done: Vec<(u64, bool)>,
    next_id: u64,
    /// Flushes waiting for the queue to drain: no new submissions from
    /// callers that sleep.
    flushers: usize,
}

// SAFETY: the raw pointers in the slots are the buffers of callers of
// `run` blocked until the device has finished with them; the queue is only
// reached through its lock, from any CPU, which moves no ownership.
unsafe impl<T: Transport + Send> Send for BlkQueue<T> {}

impl<T: Transport> BlkQueue<T> {
    /// Initialises the device with its used-buffer interrupts on (a
    /// caller that polls simply ignores them).
    pub fn new(mut transport: T) -> Result<BlkQueue<T>, Error> {
        let features = transport.begin_init(
            Features::RO
                | Features::FLUSH
                | Features::RING_INDIRECT_DESC
                | Features::RING_EVENT_IDX
                | Features::VERSION_1,
        );
        // struct virtio_blk_config: capacity (le64) first.
        let capacity = transport.read_consistent(|| {
            let lo: u32 = transport.read_config_space(0)?;
            let hi: u32 = transport.read_config_space(4)?;
            Ok(u64::from(lo) | (u64::from(hi) << 32))
        })?;
        let mut queue = VirtQueue::new(
            &mut transport,
            QUEUE,
            features.contains(Features::RING_INDIRECT_DESC),
            features.contains(Features::RING_EVENT_IDX),
        )?;
        transport.finish_init();
        queue.set_dev_notify(true);
        let n = QUEUE_SIZE;
        let slots = (0..n)
            .map(|_| Slot {
                id: 0,
                token: 0,
                cmd: Cmd::default(),
                buf: core::ptr::null_mut(),
                len: 0,
                write: false,
            })
            .collect();
        let mut done = Vec::new();
        done.try_reserve(n).map_err(|_| Error::DmaError)?;
        Ok(BlkQueue {
            transport,
            queue,
            features,
            capacity,
            flush_cmd: Box::default(),
            slots,
            inflight: 0,
            done,
            next_id: 1,
            flushers: 0,
        })
    }

    /// Size in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Whether the device refuses writes.
    pub fn readonly(&self) -> bool {
        self.features.contains(Features::RO)
    }

    /// Requests the queue takes at once.
    pub fn depth(&self) -> usize {
        self.slots.len()
    }

    /// Acknowledges the device's interrupt; true if it had raised one.
    pub fn ack_interrupt(&mut self) -> bool {
        !self.transport.ack_interrupt().is_empty()
    }

    /// Whether completions wait in the used ring, for [`BlkQueue::reap`].
    pub fn has_used(&mut self) -> bool {
        self.queue.peek_used().is_some()
    }

    /// Takes every completion from the used ring into the done list: how
    /// many there were.
    pub fn reap(&mut self) -> usize {
        let mut n = 0;
        while let Some(token) = self.queue.peek_used() {
            let Some(s) = self
                .slots
                .iter_mut()
                .find(|s| s.id != 0 && s.token == token)
            else {
                // Not a request of ours: the device is confused; leave it
                // rather than pop someone else's buffers.
                break;
            };
            // Out of heap: left in the used ring for a later look.
            if self.done.try_reserve(1).is_err() {
                break;
            }
            let (hdr, status) = s.cmd.parts();
            let popped = if s.write {
                // SAFETY: `buf`/`len` are the buffer lent with this
                // command for `token`; its owner is blocked in `run`
                // until the request is taken from `done`, so the buffer
                // is alive and untouched.
                let buf = unsafe { core::slice::from_raw_parts(s.buf, s.len) };
                // SAFETY: the same buffers, in the same order, as were
                // added for `token`.
                unsafe { self.queue.pop_used(token, &[hdr, buf], &mut [status]) }
            } else {
                // SAFETY: as above, for the buffer lent to be filled.
                let buf = unsafe { core::slice::from_raw_parts_mut(s.buf, s.len) };
                // SAFETY: as above.
                unsafe { self.queue.pop_used(token, &[hdr], &mut [buf, status]) }
            };
            let ok = popped.is_ok() && s.cmd.status == S_OK;
            self.done.push((s.id, ok));
            s.id = 0;
            s.buf = core::ptr::null_mut();
            self.inflight -= 1;
            n += 1;
        }
        n
    }

    /// Requests a caller may submit now: the free slots, none for one
    /// that sleeps while a flush waits (one that polls goes on: the
    /// flusher may be asleep on its CPU, waiting for its requests).
    fn room(&self, sleeps: bool) -> usize {
        if sleeps && self.flushers > 0 {
            return 0;
        }
        self.slots.len() - self.inflight
    }

    /// Takes the completions of the requests in `mine` (ids in
    /// increasing order) from the done list: how many, and whether all
    /// of them succeeded. Costs the done list's length, not `mine`'s (a
    /// flush of thousands of blocks is one `run`).
    fn take_mine(&mut self, mine: &[u64]) -> (usize, bool) {
        let (mut n, mut ok) = (0, true);
        let mut i = 0;
        while i < self.done.len() {
            if mine.binary_search(&self.done[i].0).is_ok() {
                ok &= self.done.swap_remove(i).1;
                n += 1;
            } else {
                i += 1;
            }
        }
        (n, ok)
    }

    /// Whether a completion of `mine` waits in the done list.
    fn any_mine(&self, mine: &[u64]) -> bool {
        self.done.iter().any(|d| mine.binary_search(&d.0).is_ok())
    }

    /// Queues `r` (the device is told at [`BlkQueue::kick`]): the
    /// request's id.
    ///
    /// Only [`run`] calls this, and it returns only once the request has
    /// completed: the buffer stays lent to the device no longer than its
    /// borrow.
    fn submit(&mut self, r: &mut Request<'_>) -> Result<u64, Error> {
        let (ptr, len) = match &r.op {
            Op::Read(b) => (b.as_ptr() as u64, b.len()),
            Op::Write(b) => (b.as_ptr() as u64, b.len()),
        };
        if len == 0 || !len.is_multiple_of(SECTOR_SIZE) || !crate::heap::contains(ptr, len) {
            return Err(Error::InvalidParam);
        }
        let s = self
            .slots
            .iter_mut()
            .find(|s| s.id == 0)
            .ok_or(Error::QueueFull)?;
        let write = matches!(r.op, Op::Write(_));
        s.cmd = Cmd::new(if write { T_OUT } else { T_IN }, r.sector);
        let (hdr, status) = s.cmd.parts();
        let (token, buf) = match &mut r.op {
            // SAFETY: the command lives in this slot, which stays taken
            // until `reap` pops the request; the buffer is borrowed by
            // `run`'s caller until `run` has seen the request complete,
            // and `run` does not touch it in between.
            Op::Read(b) => unsafe {
                let t = self.queue.add(&[hdr], &mut [b, status])?;
                (t, b.as_mut_ptr())
            },
            // SAFETY: as for a read.
            Op::Write(b) => unsafe {
                let t = self.queue.add(&[hdr, b], &mut [status])?;
                (t, b.as_ptr() as *mut u8)
            },
        };
        let id = self.next_id;
        self.next_id += 1;
        s.id = id;
        s.token = token;
        s.buf = buf;
        s.len = len;
        s.write = write;
        self.inflight += 1;
        Ok(id)
    }

    /// Tells the device about the requests queued since the last time,
    /// if it asked to be told (it does not while it is still taking
    /// requests from the ring).
    fn kick(&mut self) {
        if self.queue.should_notify() {
            self.transport.notify(QUEUE);
        }
    }

    /// VIRTIO_BLK_T_FLUSH, waited for by polling the used ring: only with
    /// nothing else in flight (its completion is then the next one).
    fn flush_now(&mut self) -> Result<(), Error> {
        if !self.features.contains(Features::FLUSH) {
            return Ok(());
        }
        *self.flush_cmd = Cmd::new(T_FLUSH, 0);
        let (hdr, status) = self.flush_cmd.parts();
        self.queue
            .add_notify_wait_pop(&[hdr], &mut [status], &mut self.transport)?;
        if self.flush_cmd.status == S_OK {
            Ok(())
        } else {
            Err(Error::IoError)
        }
    }
}

/// Runs `reqs` on the device, as many at once as the queue takes, and
/// returns once every one has completed: Ok if all succeeded. Between
/// looks at the device the caller waits through `waiter`.
pub fn run<T: Transport>(
    q: &Mutex<BlkQueue<T>>,
    reqs: &mut [Request<'_>],
    waiter: &mut dyn Waiter,
) -> Result<(), Error> {
    let n = reqs.len();
    // The ids of the requests submitted, in increasing order (the queue
    // hands them out so under its lock), and the next one to submit.
    let mut ids: Vec<u64> = Vec::new();
    ids.try_reserve_exact(n).map_err(|_| Error::DmaError)?;
    let mut next = 0;
    let mut result = Ok(());
    let mut left = n;
    let sleeps = waiter.sleeps();
    while left > 0 {
        let others = {
            let mut g = q.lock();
            let reaped = g.reap();
            let (taken, ok) = g.take_mine(&ids);
            left -= taken;
            if !ok {
                result = Err(Error::IoError);
            }
            while next < n && g.room(sleeps) > 0 {
                match g.submit(&mut reqs[next]) {
                    Ok(id) => ids.push(id),
                    // Descriptors run out before slots without indirect
                    // descriptors: wait for some to come back.
                    Err(Error::QueueFull) if g.inflight > 0 => break,
                    Err(e) => {
                        left -= 1;
                        result = Err(e);
                    }
                }
                next += 1;
            }
            // One notify for everything queued above.
            g.kick();
            // Any completion may be what a sleeper waits for: its own, a
            // free slot, or the drained queue a flush wants.
            reaped > 0
        };
        if others {
            waiter.others_completed();
        }
        if left == 0 {
            break;
        }
        let ids = &ids;
        waiter.wait(&|| {
            let mut g = q.lock();
            g.has_used() || (next < n && g.room(sleeps) > 0) || g.any_mine(ids)
        });
    }
    result
}

/// VIRTIO_BLK_T_FLUSH once the requests in flight have completed (new
/// ones wait meanwhile), returning once the device has flushed: the
/// writes that returned before the call are then on stable storage.
/// A no-op when the device has no write cache to flush.
pub fn flush<T: Transport>(q: &Mutex<BlkQueue<T>>, waiter: &mut dyn Waiter) -> Result<(), Error> {
    q.lock().flushers += 1;
    loop {
        let mut g = q.lock();
        let reaped = g.reap();
        let others = reaped > 0;
        if g.inflight == 0 {
            // Nothing else in flight: the blocking call's wait for the used
            // ring sees its own completion only.
            let r = g.flush_now();
            g.flushers -= 1;
            drop(g);
            waiter.others_completed();
            return r;
        }
        drop(g);
        if others {
            waiter.others_completed();
        }
        waiter.wait(&|| {
            let mut g = q.lock();
            g.inflight == 0 || g.has_used()
        });
    }
}
