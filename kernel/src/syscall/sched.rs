//! Scheduling syscalls: priorities (nice), policies (SCHED_OTHER, BATCH,
//! IDLE, FIFO, RR) and their parameters, yield, and CPU affinity. The
//! scheduler itself is `proc::sched` over the `runq` crate.

use abi::{Errno, KResult};
use alloc::sync::Arc;
use alloc::vec::Vec;
use runq::{Params, Policy};

use crate::proc::{self, sched, Pid, Process};
use crate::uaccess;

const PRIO_PROCESS: u64 = 0;
const PRIO_PGRP: u64 = 1;
const PRIO_USER: u64 = 2;
/// Accepted and ignored: children get the parent's policy anyway.
const SCHED_RESET_ON_FORK: u64 = 0x4000_0000;

fn target(pid: u64) -> KResult<Arc<Process>> {
    match pid as i64 {
        0 => Ok(sched::current()),
        p if p < 0 || p > Pid::MAX as i64 => Err(Errno::EINVAL),
        p => proc::lookup(p as Pid).ok_or(Errno::ESRCH),
    }
}

/// The live processes `which`/`who` names (getpriority/setpriority).
fn prio_targets(which: u64, who: u64) -> KResult<Vec<Arc<Process>>> {
    let who = who as u32;
    let all = || proc::all().into_iter().filter(|p| !p.is_zombie());
    let v: Vec<_> = match which {
        PRIO_PROCESS => alloc::vec![if who == 0 {
            sched::current()
        } else {
            proc::lookup(who).ok_or(Errno::ESRCH)?
        }],
        PRIO_PGRP => {
            let g = if who == 0 {
                sched::current().leader().rel.lock().pgid
            } else {
                who
            };
            all().filter(|p| p.rel.lock().pgid == g).collect()
        }
        // Every process is root's.
        PRIO_USER if who == 0 => all().collect(),
        PRIO_USER => Vec::new(),
        _ => return Err(Errno::EINVAL),
    };
    if v.is_empty() {
        return Err(Errno::ESRCH);
    }
    Ok(v)
}

/// getpriority(2): 20 - nice of the highest-priority target, as the raw
/// syscall returns it (libc turns it back into a nice value).
pub fn getpriority(which: u64, who: u64) -> KResult<u64> {
    let best = prio_targets(which, who)?
        .iter()
        .map(|p| p.params().nice_clamped())
        .min()
        .unwrap_or(0);
    Ok((20 - best) as u64)
}

/// setpriority(2) (and so nice(3)): sets the nice value, clamped to
/// -20..=19 as Linux does; RT processes keep it for when they go fair.
pub fn setpriority(which: u64, who: u64, nice: i32) -> KResult<u64> {
    let nice = nice.clamp(-20, 19) as i8;
    for p in prio_targets(which, who)? {
        let mut params = p.params();
        params.nice = nice;
        sched::set_params(&p, params);
    }
    Ok(0)
}

/// Reads `struct sched_param` (one int).
fn read_prio(param: u64) -> KResult<u32> {
    if param == 0 {
        return Err(Errno::EINVAL);
    }
    let v = uaccess::read_u32(param)?;
    Ok(v)
}

/// sched_setscheduler(2).
pub fn sched_setscheduler(pid: u64, policy: u64, param: u64) -> KResult<u64> {
    let p = target(pid)?;
    let policy = policy & !SCHED_RESET_ON_FORK;
    let policy = u32::try_from(policy)
        .ok()
        .and_then(Policy::from_linux)
        .ok_or(Errno::EINVAL)?;
    let prio = read_prio(param)?;
    let old = p.params();
    let params = Params::checked(policy, old.nice_clamped(), prio).ok_or(Errno::EINVAL)?;
    sched::set_params(&p, params);
    Ok(0)
}

/// sched_getscheduler(2).
pub fn sched_getscheduler(pid: u64) -> KResult<u64> {
    Ok(target(pid)?.params().policy.to_linux() as u64)
}

/// sched_setparam(2): a new RT priority under the same policy.
pub fn sched_setparam(pid: u64, param: u64) -> KResult<u64> {
    let p = target(pid)?;
    let prio = read_prio(param)?;
    let old = p.params();
    let params = Params::checked(old.policy, old.nice_clamped(), prio).ok_or(Errno::EINVAL)?;
    sched::set_params(&p, params);
    Ok(0)
}

/// sched_getparam(2).
pub fn sched_getparam(pid: u64, param: u64) -> KResult<u64> {
    if param == 0 {
        return Err(Errno::EINVAL);
    }
    let p = target(pid)?;
    uaccess::write_u32(param, p.params().rt_prio_clamped())?;
    Ok(0)
}

fn policy_arg(policy: u64) -> KResult<Policy> {
    u32::try_from(policy)
        .ok()
        .and_then(Policy::from_linux)
        .ok_or(Errno::EINVAL)
}

/// sched_get_priority_max(2): 99 for FIFO/RR, 0 otherwise.
pub fn sched_get_priority_max(policy: u64) -> KResult<u64> {
    Ok(if policy_arg(policy)?.is_rt() { 99 } else { 0 })
}

/// sched_get_priority_min(2): 1 for FIFO/RR, 0 otherwise.
pub fn sched_get_priority_min(policy: u64) -> KResult<u64> {
    Ok(if policy_arg(policy)?.is_rt() { 1 } else { 0 })
}

/// sched_rr_get_interval(2): the RR quantum for SCHED_RR, 0 for FIFO
/// (no quantum), the fair request size otherwise (as Linux reports it).
pub fn sched_rr_get_interval(pid: u64, tp: u64) -> KResult<u64> {
    let p = target(pid)?;
    let ns = match p.params().policy {
        Policy::RoundRobin => runq::RR_INTERVAL_NS,
        Policy::Fifo => 0,
        _ => runq::BASE_SLICE_NS,
    };
    let mut ts = [0u8; 16];
    ts[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    ts[8..].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
    uaccess::copy_out(tp, &ts)?;
    Ok(0)
}

/// sched_yield(2).
pub fn sched_yield() -> KResult<u64> {
    sched::yield_now();
    Ok(0)
}

fn online_mask() -> u64 {
    crate::proc::cpu::online_mask()
}

/// sched_setaffinity(2): the mask is cut to the online CPUs (a shorter
/// one is zero-extended); EINVAL if nothing is left, as Linux.
pub fn sched_setaffinity(pid: u64, len: u64, mask: u64) -> KResult<u64> {
    let p = target(pid)?;
    let mut bytes = [0u8; 8];
    let n = (len as usize).min(8);
    uaccess::copy_in(mask, &mut bytes[..n])?;
    let m = u64::from_le_bytes(bytes) & online_mask();
    if m == 0 {
        return Err(Errno::EINVAL);
    }
    sched::set_affinity(&p, m);
    Ok(0)
}

/// sched_getaffinity(2): returns the size written (one 64-bit word).
pub fn sched_getaffinity(pid: u64, len: u64, mask: u64) -> KResult<u64> {
    if len < 8 || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let p = target(pid)?;
    uaccess::write_u64(mask, p.affinity() & online_mask())?;
    Ok(8)
}
