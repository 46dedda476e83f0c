//! The Linux io_uring uapi (include/uapi/linux/io_uring.h) as the guest
//! programs use it through raw syscalls: syscall numbers, mmap offsets,
//! flags, opcodes and the `repr(C)` layouts, checked by size at compile
//! time. One copy for rsetest (the behaviour checks) and rsebench (the
//! ring benchmark).

pub const SYS_SETUP: i64 = 425;
pub const SYS_ENTER: i64 = 426;
pub const SYS_REGISTER: i64 = 427;

pub const OFF_SQ_RING: i64 = 0;
pub const OFF_CQ_RING: i64 = 0x800_0000;
pub const OFF_SQES: i64 = 0x1000_0000;

pub const SETUP_SQPOLL: u32 = 2;
pub const FEAT_SINGLE_MMAP: u32 = 1;
pub const FEAT_NODROP: u32 = 2;
pub const ENTER_GETEVENTS: u64 = 1;
pub const ENTER_SQ_WAKEUP: u64 = 2;
pub const SQ_NEED_WAKEUP: u32 = 1;
pub const SQ_CQ_OVERFLOW: u32 = 2;
pub const SETUP_SUBMIT_ALL: u32 = 1 << 7;
pub const SQE_FIXED_FILE: u8 = 1;
pub const SQE_ASYNC: u8 = 1 << 4;
pub const SQE_CQE_SKIP_SUCCESS: u8 = 1 << 6;
pub const REGISTER_FILES: u64 = 2;
pub const REGISTER_PROBE: u64 = 8;
pub const OP_SUPPORTED: u16 = 1;

pub const OP_NOP: u8 = 0;
pub const OP_READV: u8 = 1;
pub const OP_WRITEV: u8 = 2;
pub const OP_FSYNC: u8 = 3;
pub const OP_POLL_ADD: u8 = 6;
pub const OP_TIMEOUT: u8 = 11;
pub const OP_OPENAT: u8 = 18;
pub const OP_CLOSE: u8 = 19;
pub const OP_READ: u8 = 22;
pub const OP_WRITE: u8 = 23;

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct SqOff {
    pub head: u32,
    pub tail: u32,
    pub ring_mask: u32,
    pub ring_entries: u32,
    pub flags: u32,
    pub dropped: u32,
    pub array: u32,
    pub resv1: u32,
    pub user_addr: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct CqOff {
    pub head: u32,
    pub tail: u32,
    pub ring_mask: u32,
    pub ring_entries: u32,
    pub overflow: u32,
    pub cqes: u32,
    pub flags: u32,
    pub resv1: u32,
    pub user_addr: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct Params {
    pub sq_entries: u32,
    pub cq_entries: u32,
    pub flags: u32,
    pub sq_thread_cpu: u32,
    pub sq_thread_idle: u32,
    pub features: u32,
    pub wq_fd: u32,
    pub resv: [u32; 3],
    pub sq_off: SqOff,
    pub cq_off: CqOff,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct Sqe {
    pub opcode: u8,
    pub flags: u8,
    pub ioprio: u16,
    pub fd: i32,
    pub off: u64,
    pub addr: u64,
    pub len: u32,
    pub op_flags: u32,
    pub user_data: u64,
    pub buf_index: u16,
    pub personality: u16,
    pub file_index: u32,
    pub addr3: u64,
    pub pad: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Cqe {
    pub user_data: u64,
    pub res: i32,
    pub flags: u32,
}

const _: () = assert!(std::mem::size_of::<Params>() == 120);
const _: () = assert!(std::mem::size_of::<Sqe>() == 64);
const _: () = assert!(std::mem::size_of::<Cqe>() == 16);

/// Maps `len` bytes of an io_uring fd's memory at `off` (one of the
/// `OFF_*` offsets), shared and populated; Err(errno) on failure.
pub fn map_ring(fd: i32, len: usize, off: i64) -> Result<*mut u8, i32> {
    // SAFETY: a fresh shared mapping chosen by the kernel; no existing
    // memory is replaced.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd,
            off,
        )
    };
    if p == libc::MAP_FAILED {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(p.cast())
    }
}
