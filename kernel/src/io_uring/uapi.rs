//! The io_uring uapi: numbers from linux-raw-sys and the byte layouts of
//! the structures shared with user space. The kernel is safe Rust, so the
//! structures are encoded and decoded by hand at fixed offsets; the
//! offsets are checked against linux-raw-sys's `repr(C)` definitions at
//! compile time, so a mistake here does not build.

use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU64, Ordering};
use linux_raw_sys::io_uring as u;

pub use u::{
    IORING_ENTER_EXT_ARG, IORING_ENTER_GETEVENTS, IORING_ENTER_SQ_WAIT, IORING_ENTER_SQ_WAKEUP,
    IORING_FEAT_EXT_ARG, IORING_FEAT_FAST_POLL, IORING_FEAT_NODROP, IORING_FEAT_RW_CUR_POS,
    IORING_FEAT_SINGLE_MMAP, IORING_FEAT_SQPOLL_NONFIXED, IORING_FEAT_SUBMIT_STABLE,
    IORING_FSYNC_DATASYNC, IORING_OFF_CQ_RING, IORING_OFF_SQES, IORING_OFF_SQ_RING,
    IORING_REGISTER_FILES_SKIP, IORING_SETUP_CLAMP, IORING_SETUP_COOP_TASKRUN, IORING_SETUP_CQSIZE,
    IORING_SETUP_R_DISABLED, IORING_SETUP_SINGLE_ISSUER, IORING_SETUP_SQPOLL, IORING_SETUP_SQ_AFF,
    IORING_SETUP_SUBMIT_ALL, IORING_SETUP_TASKRUN_FLAG, IORING_SQ_CQ_OVERFLOW,
    IORING_SQ_NEED_WAKEUP, IORING_TIMEOUT_ABS, IORING_TIMEOUT_CLOCK_MASK,
    IORING_TIMEOUT_ETIME_SUCCESS, IO_URING_OP_SUPPORTED,
};

/// Most SQ entries (Linux's IORING_MAX_ENTRIES).
pub const MAX_ENTRIES: u32 = 32768;
/// Most CQ entries (IORING_MAX_CQ_ENTRIES).
pub const MAX_CQ_ENTRIES: u32 = 2 * MAX_ENTRIES;

/// io_uring_sqe.flags bits (IOSQE_*).
pub mod sqe_flags {
    pub const FIXED_FILE: u8 = 1 << 0;
    pub const IO_DRAIN: u8 = 1 << 1;
    pub const IO_LINK: u8 = 1 << 2;
    pub const IO_HARDLINK: u8 = 1 << 3;
    pub const ASYNC: u8 = 1 << 4;
    pub const BUFFER_SELECT: u8 = 1 << 5;
    pub const CQE_SKIP_SUCCESS: u8 = 1 << 6;
}

/// Opcodes (enum io_uring_op).
pub mod op {
    use linux_raw_sys::io_uring::io_uring_op as o;
    pub const NOP: u8 = o::IORING_OP_NOP as u8;
    pub const READV: u8 = o::IORING_OP_READV as u8;
    pub const WRITEV: u8 = o::IORING_OP_WRITEV as u8;
    pub const FSYNC: u8 = o::IORING_OP_FSYNC as u8;
    pub const POLL_ADD: u8 = o::IORING_OP_POLL_ADD as u8;
    pub const POLL_REMOVE: u8 = o::IORING_OP_POLL_REMOVE as u8;
    pub const TIMEOUT: u8 = o::IORING_OP_TIMEOUT as u8;
    pub const TIMEOUT_REMOVE: u8 = o::IORING_OP_TIMEOUT_REMOVE as u8;
    pub const ASYNC_CANCEL: u8 = o::IORING_OP_ASYNC_CANCEL as u8;
    pub const OPENAT: u8 = o::IORING_OP_OPENAT as u8;
    pub const CLOSE: u8 = o::IORING_OP_CLOSE as u8;
    pub const READ: u8 = o::IORING_OP_READ as u8;
    pub const WRITE: u8 = o::IORING_OP_WRITE as u8;
    /// Linux 6.1's IORING_OP_LAST (SENDMSG_ZC = 48 is its last opcode),
    /// what IORING_REGISTER_PROBE reports.
    pub const LAST_6_1: u8 = 49;
    /// Every opcode this kernel executes (for the probe).
    pub const SUPPORTED: &[u8] = &[
        NOP,
        READV,
        WRITEV,
        FSYNC,
        POLL_ADD,
        POLL_REMOVE,
        TIMEOUT,
        TIMEOUT_REMOVE,
        ASYNC_CANCEL,
        OPENAT,
        CLOSE,
        READ,
        WRITE,
    ];
}

/// io_uring_register(2) opcodes.
pub mod reg {
    pub const REGISTER_FILES: u32 = 2;
    pub const UNREGISTER_FILES: u32 = 3;
    pub const REGISTER_FILES_UPDATE: u32 = 6;
    pub const REGISTER_PROBE: u32 = 8;
    pub const REGISTER_ENABLE_RINGS: u32 = 12;
}

/// sizeof(struct io_uring_params).
pub const PARAMS_SIZE: usize = 120;
/// sizeof(struct io_uring_sqe).
pub const SQE_SIZE: usize = 64;
/// sizeof(struct io_uring_cqe).
pub const CQE_SIZE: usize = 16;
/// sizeof(struct io_uring_getevents_arg).
pub const GETEVENTS_ARG_SIZE: usize = 24;

const _: () = assert!(size_of::<u::io_uring_params>() == PARAMS_SIZE);
const _: () = assert!(offset_of!(u::io_uring_params, sq_thread_idle) == 16);
const _: () = assert!(offset_of!(u::io_uring_params, resv) == 28);
const _: () = assert!(offset_of!(u::io_uring_params, sq_off) == 40);
const _: () = assert!(offset_of!(u::io_uring_params, cq_off) == 80);
const _: () = assert!(size_of::<u::io_sqring_offsets>() == 40);
const _: () = assert!(offset_of!(u::io_sqring_offsets, array) == 24);
const _: () = assert!(offset_of!(u::io_cqring_offsets, cqes) == 20);
const _: () = assert!(offset_of!(u::io_cqring_offsets, flags) == 24);
const _: () = assert!(size_of::<u::io_uring_sqe>() == SQE_SIZE);
const _: () = assert!(offset_of!(u::io_uring_sqe, fd) == 4);
const _: () = assert!(offset_of!(u::io_uring_sqe, len) == 24);
const _: () = assert!(offset_of!(u::io_uring_sqe, user_data) == 32);
const _: () = assert!(offset_of!(u::io_uring_sqe, personality) == 42);
const _: () = assert!(size_of::<u::io_uring_cqe>() == CQE_SIZE);
const _: () = assert!(offset_of!(u::io_uring_cqe, res) == 8);
const _: () = assert!(size_of::<u::io_uring_getevents_arg>() == GETEVENTS_ARG_SIZE);
const _: () = assert!(size_of::<u::io_uring_files_update>() == 16);
const _: () = assert!(size_of::<u::io_uring_probe>() == 16);
const _: () = assert!(size_of::<u::io_uring_probe_op>() == 8);

pub(crate) fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

pub(crate) fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(w)
}

fn put_u32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

/// The input half of struct io_uring_params.
#[derive(Clone, Copy, Debug, Default)]
pub struct Params {
    pub sq_entries: u32,
    pub cq_entries: u32,
    pub flags: u32,
    pub sq_thread_cpu: u32,
    pub sq_thread_idle: u32,
    pub wq_fd: u32,
    pub resv: [u32; 3],
}

impl Params {
    /// Decodes the user's struct.
    pub fn decode(b: &[u8; PARAMS_SIZE]) -> Params {
        Params {
            sq_entries: u32_at(b, 0),
            cq_entries: u32_at(b, 4),
            flags: u32_at(b, 8),
            sq_thread_cpu: u32_at(b, 12),
            sq_thread_idle: u32_at(b, 16),
            wq_fd: u32_at(b, 24),
            resv: [u32_at(b, 28), u32_at(b, 32), u32_at(b, 36)],
        }
    }
}

/// Offsets of the ring fields, as io_sqring_offsets and io_cqring_offsets
/// report them (Linux's struct io_rings: head and tail of each queue on
/// their own cache line, then the masks, sizes and flags, then the CQEs
/// on a cache line, then the SQ index array).
pub mod ring_off {
    pub const SQ_HEAD: usize = 0;
    pub const SQ_TAIL: usize = 64;
    pub const CQ_HEAD: usize = 128;
    pub const CQ_TAIL: usize = 192;
    pub const SQ_RING_MASK: usize = 256;
    pub const CQ_RING_MASK: usize = 260;
    pub const SQ_RING_ENTRIES: usize = 264;
    pub const CQ_RING_ENTRIES: usize = 268;
    pub const SQ_DROPPED: usize = 272;
    pub const SQ_FLAGS: usize = 276;
    pub const CQ_FLAGS: usize = 280;
    pub const CQ_OVERFLOW: usize = 284;
    pub const CQES: usize = 320;

    /// Offset of the SQ index array for `cq_entries` CQEs.
    pub fn sq_array(cq_entries: u32) -> usize {
        (CQES + cq_entries as usize * super::CQE_SIZE).next_multiple_of(64)
    }
}

/// The output struct io_uring_params.
pub fn encode_params(p: &Params, features: u32, array: usize) -> [u8; PARAMS_SIZE] {
    use ring_off::*;
    let mut b = [0u8; PARAMS_SIZE];
    put_u32(&mut b, 0, p.sq_entries);
    put_u32(&mut b, 4, p.cq_entries);
    put_u32(&mut b, 8, p.flags);
    put_u32(&mut b, 12, p.sq_thread_cpu);
    put_u32(&mut b, 16, p.sq_thread_idle);
    put_u32(&mut b, 20, features);
    put_u32(&mut b, 24, p.wq_fd);
    let sq = [
        SQ_HEAD,
        SQ_TAIL,
        SQ_RING_MASK,
        SQ_RING_ENTRIES,
        SQ_FLAGS,
        SQ_DROPPED,
        array,
    ];
    for (i, v) in sq.iter().enumerate() {
        put_u32(&mut b, 40 + 4 * i, *v as u32);
    }
    let cq = [
        CQ_HEAD,
        CQ_TAIL,
        CQ_RING_MASK,
        CQ_RING_ENTRIES,
        CQ_OVERFLOW,
        CQES,
        CQ_FLAGS,
    ];
    for (i, v) in cq.iter().enumerate() {
        put_u32(&mut b, 80 + 4 * i, *v as u32);
    }
    b
}

/// A submission queue entry, copied out of the shared ring (so the
/// application may reuse the slot at once: IORING_FEAT_SUBMIT_STABLE).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sqe {
    pub opcode: u8,
    pub flags: u8,
    pub fd: i32,
    /// `off` / `addr2`.
    pub off: u64,
    pub addr: u64,
    pub len: u32,
    /// The per-opcode flags word (rw_flags, fsync_flags, poll32_events,
    /// timeout_flags, open_flags, …).
    pub op_flags: u32,
    pub user_data: u64,
    pub buf_index: u16,
    pub personality: u16,
    /// `splice_fd_in` / `file_index`.
    pub file_index: u32,
}

impl Sqe {
    /// Decodes the SQE from its first six little-endian u64 words in the
    /// shared array (the last two, addr3 and padding, are not used), one
    /// relaxed atomic load each: the application may be rewriting the
    /// slot, and the copy is what the operation sees.
    pub fn from_words(w: &[AtomicU64; 8]) -> Sqe {
        let ld = |i: usize| w[i].load(Ordering::Relaxed);
        let (w0, w3, w5) = (ld(0), ld(3), ld(5));
        Sqe {
            opcode: w0 as u8,
            flags: (w0 >> 8) as u8,
            fd: (w0 >> 32) as u32 as i32,
            off: ld(1),
            addr: ld(2),
            len: w3 as u32,
            op_flags: (w3 >> 32) as u32,
            user_data: ld(4),
            buf_index: w5 as u16,
            personality: (w5 >> 16) as u16,
            file_index: (w5 >> 32) as u32,
        }
    }
}

/// Word indices and bit positions of SQE fields, for reading them straight
/// from the shared array (checked against linux-raw-sys below).
pub mod sqe_word {
    /// opcode (bits 0-7), flags (8-15), ioprio (16-31), fd (32-63).
    pub const HEAD: usize = 0;
    /// len (bits 0-31), the per-opcode flags word (32-63).
    pub const LEN_FLAGS: usize = 3;
    pub const USER_DATA: usize = 4;
    /// buf_index (bits 0-15), personality (16-31), file_index (32-63).
    pub const BUF_PERS: usize = 5;
}
const _: () = assert!(offset_of!(u::io_uring_sqe, opcode) == 0);
const _: () = assert!(offset_of!(u::io_uring_sqe, flags) == 1);
const _: () = assert!(offset_of!(u::io_uring_sqe, ioprio) == 2);
const _: () = assert!(offset_of!(u::io_uring_sqe, __bindgen_anon_1) == 8); // off
const _: () = assert!(offset_of!(u::io_uring_sqe, __bindgen_anon_2) == 16); // addr
const _: () = assert!(offset_of!(u::io_uring_sqe, __bindgen_anon_3) == 28); // op flags
const _: () = assert!(offset_of!(u::io_uring_sqe, __bindgen_anon_4) == 40); // buf_index
const _: () = assert!(offset_of!(u::io_uring_sqe, __bindgen_anon_5) == 44); // file_index
const _: () = assert!(offset_of!(u::io_uring_cqe, flags) == 12);

/// A completion queue entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cqe {
    pub user_data: u64,
    pub res: i32,
    pub flags: u32,
}

impl Cqe {
    /// struct io_uring_cqe as two little-endian u64 words: user_data, then
    /// res (low half) and flags (high half).
    pub fn words(&self) -> [u64; 2] {
        [self.user_data, res_flags(self.res, self.flags)]
    }
}

/// The second word of a CQE.
#[inline]
pub fn res_flags(res: i32, flags: u32) -> u64 {
    res as u32 as u64 | (flags as u64) << 32
}
