//! A virtio-blk disk through hal's `BlkQueue`: requests are queued
//! several at once (as many as the virtqueue takes, 16) and completed in
//! whatever order the device finishes them. The caller's buffers are lent
//! to the device in place when they are kernel heap memory, one
//! physically contiguous region of the direct map (hal's `DmaHal::share`
//! translates the address).
//!
//! A caller waits for its requests in one of two ways ([`Wait`]): it
//! sleeps on `irq::WQ` until the disk's interrupt (or another caller that
//! found them in the used ring) says they completed, or it polls the used
//! ring — before the scheduler runs (the root disk is mounted at boot),
//! with no process, without an interrupt line, or when it holds a spin
//! lock (ext4's), under which sleeping could leave another task of its
//! CPU spinning for good.

use abi::{Errno, KResult};
use spin::Mutex;
use virtio_drivers::transport::SomeTransport;

use hal::virtio_blk::{self as hv, BlkQueue, Op, Request, Waiter};

use super::stats::{Batch, Stats};

/// Bytes per sector (virtio-blk's unit, whatever the device's block size).
pub const SECTOR: usize = virtio_drivers::device::blk::SECTOR_SIZE;

/// How long a caller that may sleep looks at the device first (ns):
/// 50 µs, or `blk.spin_us=N` on the command line.
static SPIN_NS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(50_000);

/// Reads `blk.spin_us=N` (0: a caller that may sleep sleeps at once;
/// tests use it to make sure the sleeping path is taken).
pub fn init(cmd: &str) {
    if let Some(us) = crate::cmdline::get(cmd, "blk.spin_us").and_then(|v| v.parse::<u64>().ok()) {
        SPIN_NS.store(
            us.saturating_mul(1000),
            core::sync::atomic::Ordering::Relaxed,
        );
    }
}

/// How a caller waits for the device.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Wait {
    /// Sleep if it can (a process, an interrupt line): the caller holds
    /// no spin lock.
    Sleep,
    /// Poll the used ring.
    Poll,
}

pub struct VirtioBlk {
    q: Mutex<BlkQueue<SomeTransport<'static>>>,
    sectors: u64,
    readonly: bool,
    flush: bool,
    /// Completions interrupt (the line is routed).
    irq: bool,
    stats: Stats,
}

fn eio(e: virtio_drivers::Error) -> Errno {
    crate::klog!("block: device error {e}");
    Errno::EIO
}

impl VirtioBlk {
    pub fn new(
        transport: SomeTransport<'static>,
        gsi: Option<u32>,
    ) -> Result<VirtioBlk, virtio_drivers::Error> {
        use virtio_drivers::transport::Transport;
        // VIRTIO_BLK_F_FLUSH (bit 9): whether fsync can ask the device to
        // write back its cache. Read before the driver negotiates.
        let mut transport = transport;
        let flush = transport.read_device_features() & (1 << 9) != 0;
        let q = BlkQueue::new(transport)?;
        Ok(VirtioBlk {
            sectors: q.capacity(),
            readonly: q.readonly(),
            q: Mutex::new(q),
            flush,
            irq: super::irq::attach(gsi),
            stats: Stats::default(),
        })
    }

    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    pub fn readonly(&self) -> bool {
        self.readonly
    }

    pub fn has_flush(&self) -> bool {
        self.flush
    }

    pub fn has_irq(&self) -> bool {
        self.irq
    }

    /// Requests the device takes at once.
    pub fn depth(&self) -> usize {
        self.q.lock().depth()
    }

    /// Runs `reqs` (whole sectors each, heap buffers), several at once;
    /// returns once all completed.
    pub fn run(&self, reqs: &mut [Request<'_>], how: Wait) -> KResult<()> {
        let mut batch = Batch::default();
        for r in reqs.iter() {
            match &r.op {
                Op::Read(b) => {
                    batch.reads += 1;
                    batch.read_sectors += (b.len() / SECTOR) as u64;
                }
                Op::Write(b) => {
                    batch.writes += 1;
                    batch.write_sectors += (b.len() / SECTOR) as u64;
                }
            }
        }
        let _counted = self.stats.start(batch);
        hv::run(&self.q, reqs, &mut self.waiter(how)).map_err(eio)
    }

    /// VIRTIO_BLK_T_FLUSH after the requests in flight completed (a
    /// no-op when the device has no write cache to flush, i.e. did not
    /// offer the feature).
    pub fn flush(&self, how: Wait) -> KResult<()> {
        // Counted only when the device has a cache to flush (Linux counts
        // no flush for a device without one).
        let _counted = self.flush.then(|| {
            self.stats.start(Batch {
                flushes: 1,
                ..Batch::default()
            })
        });
        hv::flush(&self.q, &mut self.waiter(how)).map_err(eio)
    }

    /// Its `/proc/diskstats` counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// After an interrupt: acknowledges the device and takes its
    /// completions; whether there were any.
    pub fn interrupted(&self) -> bool {
        let mut q = self.q.lock();
        q.ack_interrupt();
        q.reap() > 0
    }

    fn waiter(&self, how: Wait) -> Waiting {
        Waiting {
            sleep: how == Wait::Sleep
                && self.irq
                && hal::cpu::interrupts_enabled()
                && crate::proc::sched::try_current().is_some(),
        }
    }
}

/// A caller's way of waiting: asleep until the interrupt's deferred work
/// (or another caller) took a completion from the device, or looking at
/// the used ring again at once.
struct Waiting {
    sleep: bool,
}

impl Waiter for Waiting {
    fn wait(&mut self, ready: &dyn Fn() -> bool) {
        if !self.sleep {
            core::hint::spin_loop();
            return;
        }
        // A small request completes in about the time a sleep and a
        // wake-up through the interrupt take (tens of µs under TCG):
        // look for a while before sleeping.
        let until = hal::time::now_ns() + SPIN_NS.load(core::sync::atomic::Ordering::Relaxed);
        while hal::time::now_ns() < until {
            if ready() {
                return;
            }
            core::hint::spin_loop();
        }
        // Uninterruptible: the device owns the buffers until the requests
        // complete. A pending signal makes wait_until return at once:
        // yield rather than spin, and look again.
        let woke = super::irq::sleeping(|| super::irq::WQ.wait_until(|| ready().then_some(())));
        if woke.is_err() {
            crate::proc::sched::schedule();
        }
    }

    fn others_completed(&mut self) {
        super::irq::WQ.wake_all();
    }

    fn sleeps(&self) -> bool {
        self.sleep
    }
}
