//! io_uring_setup(2).

use abi::{Errno, KResult};
use alloc::sync::Arc;

use super::ring::Ring;
use super::uapi::*;
use crate::fs::file::{Kind, OpenFile, O_RDWR};
use crate::proc::sched::current;
use crate::uaccess;

/// Setup flags accepted. IOPOLL (no polled block devices), ATTACH_WQ,
/// SQE128/CQE32, DEFER_TASKRUN and the newer flags are refused (EINVAL).
/// COOP_TASKRUN, TASKRUN_FLAG and SINGLE_ISSUER are accepted as hints:
/// there is no task work to defer here.
const FLAGS_OK: u32 = IORING_SETUP_SQPOLL
    | IORING_SETUP_SQ_AFF
    | IORING_SETUP_CQSIZE
    | IORING_SETUP_CLAMP
    | IORING_SETUP_R_DISABLED
    | IORING_SETUP_SUBMIT_ALL
    | IORING_SETUP_COOP_TASKRUN
    | IORING_SETUP_TASKRUN_FLAG
    | IORING_SETUP_SINGLE_ISSUER;

/// What we report in params.features.
const FEATURES: u32 = IORING_FEAT_SINGLE_MMAP
    | IORING_FEAT_NODROP
    | IORING_FEAT_SUBMIT_STABLE
    | IORING_FEAT_RW_CUR_POS
    | IORING_FEAT_FAST_POLL
    | IORING_FEAT_SQPOLL_NONFIXED
    | IORING_FEAT_EXT_ARG;

/// Linux 6.1's rules for the ring sizes; fills p.sq_entries/cq_entries.
fn sizes(entries: u32, p: &mut Params) -> KResult<()> {
    let clamp = p.flags & IORING_SETUP_CLAMP != 0;
    let mut entries = entries;
    if entries == 0 {
        return Err(Errno::EINVAL);
    }
    if entries > MAX_ENTRIES {
        if !clamp {
            return Err(Errno::EINVAL);
        }
        entries = MAX_ENTRIES;
    }
    p.sq_entries = entries.next_power_of_two();
    if p.flags & IORING_SETUP_CQSIZE != 0 {
        if p.cq_entries == 0 {
            return Err(Errno::EINVAL);
        }
        if p.cq_entries > MAX_CQ_ENTRIES {
            if !clamp {
                return Err(Errno::EINVAL);
            }
            p.cq_entries = MAX_CQ_ENTRIES;
        }
        p.cq_entries = p.cq_entries.next_power_of_two();
        if p.cq_entries < p.sq_entries {
            return Err(Errno::EINVAL);
        }
    } else {
        p.cq_entries = 2 * p.sq_entries;
    }
    Ok(())
}

/// io_uring_setup(entries, params): a new ring; its fd is close-on-exec.
pub fn setup(entries: u64, params: u64) -> KResult<u64> {
    let mut raw = [0u8; PARAMS_SIZE];
    uaccess::copy_in(params, &mut raw)?;
    let mut p = Params::decode(&raw);
    if p.resv != [0; 3] || p.flags & !FLAGS_OK != 0 {
        return Err(Errno::EINVAL);
    }
    let sqpoll = p.flags & IORING_SETUP_SQPOLL != 0;
    if p.flags & IORING_SETUP_SQ_AFF != 0 && (!sqpoll || p.sq_thread_cpu != 0) {
        // SQ_AFF needs SQPOLL, and there is one CPU (0).
        return Err(Errno::EINVAL);
    }
    if sqpoll && p.flags & (IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG) != 0 {
        return Err(Errno::EINVAL);
    }
    if p.flags & IORING_SETUP_TASKRUN_FLAG != 0 && p.flags & IORING_SETUP_COOP_TASKRUN == 0 {
        return Err(Errno::EINVAL);
    }
    sizes(entries as u32, &mut p)?;
    let me = current();
    let torus = me.info.lock().torus;
    let ring = Arc::new(Ring::new(
        &p,
        torus,
        Arc::downgrade(&me),
        hal::time::now_ns(),
    )?);
    // Written back before the fd exists, so a bad pointer leaves nothing.
    uaccess::copy_out(params, &encode_params(&p, FEATURES, ring.sq_array))?;
    let file = OpenFile::new(Kind::IoUring(ring.clone()), O_RDWR);
    let fd = me.files().lock().insert(file, true)?;
    if sqpoll {
        super::register_active(&ring);
    }
    Ok(fd as u64)
}
